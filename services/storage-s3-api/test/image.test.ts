// The service's image without Docker: its Dockerfile's install step and build, run here the same way.
import { describeImage } from "@peoples-cloud/testkit";

describeImage("storage-s3-api", {
    dependencies: ["@aws-sdk/client-s3@3.1169.0", "@smithy/core@3.41.0", "@smithy/node-http-handler@4.14.2"],
    entryPoints: ["main.js", "rewrap.js"],
});
