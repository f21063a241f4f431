// Entry point for `pulumi preview` / `pulumi up`: the stack outputs are what `platform()` returns.
import { platform } from "./program";

export = platform;
