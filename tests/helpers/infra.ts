// The program's infra layer on test hosts, K3s off (its binary cannot be had here): the first host a server,
// the others agents, reached with the hosts' client key.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { InfraLayer } from "../../components/infra/layer";
import { infraArgs } from "../../program";
import { settingsSchema } from "../../stacks/schema";
import type { TestHost, TestHosts } from "./testhosts";

export function testHostsInfra(stack: string, lab: TestHosts, hosts: TestHost[] = lab.hosts): InfraLayer {
    const settings = settingsSchema.parse({
        nodes: {
            provider: "bare-metal",
            hosts: hosts.map((h, i) => ({ name: h.name, address: h.address, role: i === 0 ? "server" : "agent" })),
        },
        k3s: { enabled: false },
    });
    const privateKey = fs.readFileSync(lab.clientKeyPath, "utf8");
    return new InfraLayer(
        "infra",
        infraArgs({ project: "peoples-cloud", stack, settings, secrets: { sshPrivateKey: pulumi.secret(privateKey) } }),
    );
}
