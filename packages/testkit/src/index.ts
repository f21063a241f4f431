// Helpers the services' tests and benchmarks and the repository's integration tests share: real MinIO and
// OpenBao servers on loopback, an S3 client for tests, benchmark reports, and where the built tools are.
export * from "./bench";
export * from "./s3";
export * from "./servers";
export * from "./tools";
