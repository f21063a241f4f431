import * as assert from "node:assert/strict";
import { renderWireGuardConfig } from "../../components/infra/wireguard";

const peer = (name: string, n: number) => ({
    name,
    publicKey: `${name.padEnd(43, "A")}=`,
    endpoint: `192.0.2.${n}:51820`,
    allowedIps: [`10.99.0.${n}/32`],
});

describe("WireGuard config", () => {
    it("lists every peer, without any private key", () => {
        const text = renderWireGuardConfig({ address: "10.99.0.1/24", listenPort: 51820, peers: [peer("b", 2)] });
        assert.equal(
            text,
            "[Interface]\nAddress = 10.99.0.1/24\nListenPort = 51820\n\n# b\n[Peer]\n" +
                `PublicKey = ${"b".padEnd(43, "A")}=\nEndpoint = 192.0.2.2:51820\nAllowedIPs = 10.99.0.2/32\nPersistentKeepalive = 25\n`,
        );
        assert.ok(!/PrivateKey/.test(text));
    });

    it("does not change when the same peers come in another order", () => {
        const a = renderWireGuardConfig({
            address: "10.99.0.1/24",
            listenPort: 51820,
            peers: [peer("b", 2), peer("c", 3)],
        });
        const b = renderWireGuardConfig({
            address: "10.99.0.1/24",
            listenPort: 51820,
            peers: [peer("c", 3), peer("b", 2)],
        });
        assert.equal(a, b);
    });

    it("leaves out the endpoint of a roaming device", () => {
        const device = { ...peer("phone", 9), endpoint: undefined };
        const text = renderWireGuardConfig({ address: "10.99.0.1/24", listenPort: 51820, peers: [device] });
        assert.ok(!text.includes("Endpoint"));
    });
});
