import * as http from "node:http";

/**
 * Whether a kept-alive client's GET of `url` after `idleMs` of quiet goes over the connection of the GET before
 * it (the server kept the idle connection open). Each answer must be `status`.
 */
export async function reusesIdleConnection(url: string, idleMs: number, status = 200): Promise<boolean> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const portOfAnswer = () =>
        new Promise<number>((resolve, reject) =>
            http
                .get(url, { agent }, (res) => {
                    if (res.statusCode !== status) reject(new Error(`GET ${url} answered ${res.statusCode}`));
                    const port = res.socket.localPort!;
                    res.resume().on("end", () => resolve(port));
                })
                .on("error", reject),
        );
    try {
        const first = await portOfAnswer();
        await new Promise((r) => setTimeout(r, idleMs));
        return (await portOfAnswer()) === first;
    } finally {
        agent.destroy();
    }
}
