// The WireGuard configuration of one node, without its private key (wg-apply.sh adds that on the node).

export interface WireGuardPeer {
    name: string;
    publicKey: string;
    /** host:port the peer listens on; absent for a roaming device. */
    endpoint?: string;
    /** The peer's mesh address (a /32), plus anything routed through it. */
    allowedIps: string[];
}

export interface WireGuardInterface {
    /** This node's mesh address with the mesh prefix, e.g. 10.99.0.1/24. */
    address: string;
    listenPort: number;
    peers: WireGuardPeer[];
}

/** wg-quick configuration text; peers sorted by name so the text changes only when the peer set does. */
export function renderWireGuardConfig(wg: WireGuardInterface): string {
    const lines = ["[Interface]", `Address = ${wg.address}`, `ListenPort = ${wg.listenPort}`];
    for (const peer of [...wg.peers].sort((a, b) => a.name.localeCompare(b.name))) {
        lines.push("", `# ${peer.name}`, "[Peer]", `PublicKey = ${peer.publicKey}`);
        if (peer.endpoint) lines.push(`Endpoint = ${peer.endpoint}`);
        lines.push(`AllowedIPs = ${peer.allowedIps.join(", ")}`, "PersistentKeepalive = 25");
    }
    return `${lines.join("\n")}\n`;
}
