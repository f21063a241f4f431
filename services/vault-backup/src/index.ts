// The library the family tool's restore command uses, and the parts of the CronJob's backup.
export { type BackupOptions, type BackupResult, type BackupStep, BackupError, backupVault } from "./backup";
export { EnvelopeError } from "./envelope";
export {
    fetchBackup,
    type RestoreOptions,
    type RestorePlan,
    type RestoreResult,
    RestoreError,
    restoreVault,
} from "./restore";
export { checkSnapshot, SnapshotError, type SnapshotInfo } from "./snapshot";
export {
    type BackupStore,
    type LastSuccess,
    listBackups,
    listObjects,
    readLastSuccess,
    storeClient,
    type StoredBackup,
} from "./store";
export { type VaultAccess, VaultError } from "./vault";
