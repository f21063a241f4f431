// Every chart and image the apps layer installs, pinned.
import type { PinnedChart, PinnedImage } from "../../lib/kube";

/**
 * SeaweedFS 4.53 (chart 4.53.0), the release the tests build from its Go module (tools/go/seaweedfs) and run
 * the storage services and 32-writer conditional-write races on; it has the filer's write preconditions
 * evaluated in one place (seaweedfs #9650), which S3's conditional PUTs rely on. Docker Hub's digest could not
 * be read from here, so the image is pinned by its release tag, as the foundation's are.
 */
export const seaweedfs = {
    chart: {
        repo: "https://seaweedfs.github.io/seaweedfs/helm",
        chart: "seaweedfs",
        version: "4.53.0",
        namespace: "storage",
    } satisfies PinnedChart,
    image: { repository: "chrislusf/seaweedfs", tag: "4.53" } satisfies PinnedImage,
};

/**
 * The services' images as this release publishes them (ghcr.io/<owner>/storage-s3-api, storage-kv-api and
 * vault-backup, by the image workflow), each `<repository>@sha256:<digest>`. On a release tag the workflow's
 * `pin` job writes them here (scripts/pin-images.ts) and proposes the change as a pull request. None is
 * published yet: until then a stack names its images in `peoples-cloud:apps.images`, and without them the apps
 * layer installs the backend and the secrets but not the two services, and the backup layer Vault's backup
 * identity and keys but not its CronJob (each says so).
 */
export const publishedImages: {
    readonly storageS3Api?: string;
    readonly storageKvApi?: string;
    readonly vaultBackup?: string;
} = {};
