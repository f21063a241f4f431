// Remote steps are bash scripts kept as files beside the code that runs them (ShellCheck reads them there):
// `scriptsIn(__dirname)("k3s-install.sh")` is the text of `<that folder>/scripts/k3s-install.sh`.
import * as fs from "node:fs";
import * as path from "node:path";

export function scriptsIn(dir: string): (name: string) => string {
    return (name) => fs.readFileSync(path.join(dir, "scripts", name), "utf8");
}
