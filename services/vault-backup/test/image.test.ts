// The job's image without Docker: its Dockerfile's install step and build, run here the same way.
import { describeImage } from "@peoples-cloud/testkit";

describeImage("vault-backup", { entryPoints: ["main.js"] });
