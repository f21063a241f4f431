// S3 access key ids that storage-s3-api gives the platform's own services. Members' ids are their names, so
// the stack schema refuses a member named like one of these, and the apps layer issues them.
export const SERVICE_ACCESS_KEY_IDS = { storageKvApi: "storage-kv-api" } as const;
