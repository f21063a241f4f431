// Helpers the services' tests and benchmarks and the repository's integration tests share: real MinIO and
// OpenBao servers on loopback, an S3 client for tests, benchmark reports, where the built tools are, and a
// service's image assembled as its Dockerfile does.
export * from "./bench";
export * from "./http";
export * from "./image";
export * from "./kubernetes";
export * from "./s3";
export * from "./servers";
export * from "./tools";
