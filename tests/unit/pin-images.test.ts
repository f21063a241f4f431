// scripts/pin-images.ts, which the images workflow runs on a release tag: it turns the published digests into
// the program's default images, refusing anything not pinned by digest.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { pinImages } from "../../scripts/pin-images";

const versions = path.join(__dirname, "..", "..", "components", "apps", "versions.ts");
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const images = {
    storageS3Api: `ghcr.io/family/storage-s3-api@${digest("a")}`,
    storageKvApi: `ghcr.io/family/storage-kv-api@${digest("b")}`,
    vaultBackup: `ghcr.io/family/vault-backup@${digest("d")}`,
};

describe("scripts/pin-images.ts", () => {
    it("writes the released images into components/apps/versions.ts's publishedImages", () => {
        const pinned = pinImages(fs.readFileSync(versions, "utf8"), images);
        assert.match(
            pinned,
            /export const publishedImages: [^=]+= \{\n {4}storageS3Api: "ghcr\.io\/family\/storage-s3-api@sha256:a{64}",\n {4}storageKvApi: "ghcr\.io\/family\/storage-kv-api@sha256:b{64}",\n {4}vaultBackup: "ghcr\.io\/family\/vault-backup@sha256:d{64}",\n\};/,
        );
        // Pinning again (the next release) replaces the previous pins.
        const next = pinImages(pinned, { ...images, storageKvApi: `ghcr.io/family/storage-kv-api@${digest("c")}` });
        assert.equal((next.match(/@sha256:[0-9a-f]{64}/g) ?? []).length, 3);
        assert.match(next, /storage-kv-api@sha256:c{64}/);
    });

    it("refuses a tag, a missing service or an unknown one", () => {
        const text = fs.readFileSync(versions, "utf8");
        assert.throws(
            () => pinImages(text, { ...images, storageKvApi: "ghcr.io/family/storage-kv-api:v1" }),
            /not pinned by digest/,
        );
        assert.throws(
            () => pinImages(text, { storageS3Api: images.storageS3Api }),
            /no image for storageKvApi, vaultBackup/,
        );
        assert.throws(
            () => pinImages(text, { storageS3Api: images.storageS3Api, storageKvApi: images.storageKvApi }),
            /no image for vaultBackup/,
        );
        assert.throws(() => pinImages(text, { ...images, webmail: images.storageS3Api }), /unknown service webmail/);
        assert.throws(() => pinImages("export const other = {};", images), /no `export const publishedImages`/);
    });
});
