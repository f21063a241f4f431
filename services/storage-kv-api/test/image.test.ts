// The service's image without Docker: its Dockerfile's install step and build, run here the same way.
import { describeImage } from "@peoples-cloud/testkit";

describeImage("storage-kv-api", { dependencies: ["@aws-sdk/client-s3@3.1169.0"], entryPoints: ["main.js"] });
