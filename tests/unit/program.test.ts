import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { meshAddressOf } from "../../lib/mesh-addresses";
import { platform } from "../../program";
import { ConfigError, loadConfig } from "../../stacks/config";
import { useMocks, unwrap } from "../helpers/mocks";
import { rawConfig, stackFileValues } from "../helpers/stackConfig";

const sshKey = { "peoples-cloud:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\ntest-only\n" };

describe("program", () => {
    it("stops on invalid config before any resource is registered", async () => {
        const recorded = await useMocks("dev", rawConfig({ "peoples-cloud:nodes": { provider: "aws" } }));
        assert.throws(
            () => platform(),
            (err: unknown) => {
                assert.ok(err instanceof ConfigError);
                assert.match(err.message, /peoples-cloud:nodes\.provider/);
                return true;
            },
        );
        assert.deepEqual(recorded, []);
    });

    it("runs the dev stack and exports its shape", async () => {
        await useMocks("dev", rawConfig(stackFileValues("dev"), sshKey));
        const {
            kubeconfig,
            meshPublicKeys,
            ingress,
            internalCaCertificate,
            vault,
            vaultAdminToken,
            vaultUnsealKeys,
            storage,
            members,
            backupKey,
            backupCredentials,
            serverAccess,
            agentAccess,
            ...outputs
        } = platform();
        const first = meshAddressOf("node-1", "10.99.0.0/16");
        assert.deepEqual(outputs, {
            stack: "dev",
            nodeProvider: "bare-metal",
            nodes: [
                { name: "node-1", role: "server", meshAddress: first, publicAddress: "192.0.2.11" },
                {
                    name: "node-2",
                    role: "agent",
                    meshAddress: meshAddressOf("node-2", "10.99.0.0/16"),
                    publicAddress: "192.0.2.12",
                },
            ],
            meshCidr: "10.99.0.0/16",
            meshPort: 51820,
            devices: [],
            // Pulumi.dev.yaml names no backup target: K3s keeps its snapshots on the servers, Vault's go to
            // SeaweedFS in the cluster.
            backup: {
                etcdSnapshots: "/var/lib/rancher/k3s/server/db/snapshots on each server",
                vault: {
                    endpoint: "http://seaweedfs-s3.storage.svc:8333",
                    bucket: "peoples-cloud-backups",
                    region: "us-east-1",
                    prefix: "dev/vault/",
                    inCluster: true,
                },
            },
            k3sVersion: "v1.33.5+k3s1",
            kubernetesApi: `https://${first}:6443`,
            // Pulumi.dev.yaml sets no acmeEmail: the internal CA signs the dev stack's certificates.
            issuers: { default: "peoples-cloud-internal-ca", internalCa: "peoples-cloud-internal-ca" },
        });
        assert.ok(kubeconfig && meshPublicKeys && internalCaCertificate);
        assert.equal(ingress?.class, "traefik");
        assert.equal((await unwrap(ingress.domain)).value, "192-0-2-11.sslip.io");
        // Two nodes: one Vault server, not an "HA" cluster on too few nodes.
        assert.deepEqual([vault?.address, vault?.replicas], ["https://vault.vault.svc:8200", 1]);
        assert.ok(vaultAdminToken && vaultUnsealKeys);
        // Unknown until a real init ran, but secret already.
        assert.equal(await pulumi.isSecret(vaultAdminToken), true);
        assert.equal(await pulumi.isSecret(vaultUnsealKeys), true);
        assert.ok(backupKey && backupCredentials && serverAccess);
        assert.equal(await pulumi.isSecret(backupKey), true);
        assert.equal(await pulumi.isSecret(backupCredentials), true);
        // What `restore` reaches: the K3s servers, the first one first, with the stack's SSH key (secret).
        const servers = await unwrap(serverAccess);
        assert.equal(servers.secret, true);
        assert.deepEqual(
            servers.value?.map((s) => [
                s.name,
                s.connection.host,
                s.connection.privateKey === sshKey["peoples-cloud:sshPrivateKey"],
            ]),
            [["node-1", "192.0.2.11", true]],
        );
        // The agents, which a restore onto new machines restarts.
        const agents = await unwrap(agentAccess!);
        assert.equal(agents.secret, true);
        assert.deepEqual(
            agents.value?.map((a) => [a.name, a.connection.host]),
            [["node-2", "192.0.2.12"]],
        );
        // No service image is published yet and Pulumi.dev.yaml names none: SeaweedFS and the keys, no service.
        assert.ok(storage);
        assert.deepEqual([storage.backend, storage.services], ["seaweedfs", []]);
        assert.equal((await unwrap(storage.s3Endpoint)).value, "https://s3.192-0-2-11.sslip.io");
        assert.equal((await unwrap(storage.kvEndpoint)).value, "https://kv.192-0-2-11.sslip.io");
        assert.deepEqual(Object.keys(members ?? {}), ["alex", "sam"]);
        for (const m of Object.values(members ?? {})) {
            assert.equal(await pulumi.isSecret(m.secretAccessKey), true);
            assert.equal(await pulumi.isSecret(m.kvToken), true);
        }
    });

    it("keeps secrets as secret outputs", async () => {
        await useMocks("dev", rawConfig(stackFileValues("dev"), sshKey));
        const config = loadConfig();
        assert.ok(config.secrets.sshPrivateKey);
        const key = await unwrap(config.secrets.sshPrivateKey);
        assert.deepEqual(key, { value: sshKey["peoples-cloud:sshPrivateKey"], secret: true });
        assert.equal(config.secrets.hcloudToken, undefined);
    });
});
