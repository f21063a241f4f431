// The service's image without Docker: its Dockerfile's install step and build, run here the same way.
import { describeImage } from "@peoples-cloud/testkit";

describeImage("storage-s3-api", { entryPoints: ["main.js", "rewrap.js"] });
