// Operating the service: what each request was (for metrics and logs), Prometheus metrics, liveness and
// readiness on a port of their own (a bucket may be called "metrics"), and a shutdown that drains.
import * as http from "node:http";

/** What a finished request tells metrics and logs: never a key, a body or a credential. */
export interface RequestEvent {
    requestId: string;
    /** Its name in the operation table (operations.ts). */
    operation: string;
    bucket?: string;
    status: number;
    errorCode?: string;
    /** Behind a 5xx: the failing dependency's error class or socket code. */
    cause?: string;
    durationSeconds: number;
    bytesIn: number;
    bytesOut: number;
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const labels = (values: Record<string, string>) =>
    `{${Object.entries(values)
        .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, "\\$&")}"`)
        .join(",")}}`;

/** Counters and a latency histogram per operation, in Prometheus's text format. */
export class Metrics {
    private readonly requests = new Map<string, number>();
    private readonly durations = new Map<string, { buckets: number[]; sum: number; count: number }>();
    private bytesIn = 0;
    private bytesOut = 0;

    constructor(private readonly vaultCalls: () => number = () => 0) {}

    record(event: RequestEvent): void {
        const key = `${event.operation}\0${event.status}`;
        this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
        let d = this.durations.get(event.operation);
        if (!d) this.durations.set(event.operation, (d = { buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 }));
        DURATION_BUCKETS.forEach((le, i) => (d.buckets[i] += event.durationSeconds <= le ? 1 : 0));
        d.sum += event.durationSeconds;
        d.count++;
        this.bytesIn += event.bytesIn;
        this.bytesOut += event.bytesOut;
    }

    render(): string {
        const lines = [
            "# HELP storage_s3_api_requests_total S3 requests answered, by operation and HTTP status.",
            "# TYPE storage_s3_api_requests_total counter",
            ...[...this.requests].map(([key, n]) => {
                const [operation, status] = key.split("\0");
                return `storage_s3_api_requests_total${labels({ operation, status })} ${n}`;
            }),
            "# HELP storage_s3_api_request_duration_seconds Time to answer a request, by operation.",
            "# TYPE storage_s3_api_request_duration_seconds histogram",
        ];
        for (const [operation, d] of this.durations) {
            DURATION_BUCKETS.forEach((le, i) =>
                lines.push(
                    `storage_s3_api_request_duration_seconds_bucket${labels({ operation, le: String(le) })} ${d.buckets[i]}`,
                ),
            );
            lines.push(
                `storage_s3_api_request_duration_seconds_bucket${labels({ operation, le: "+Inf" })} ${d.count}`,
                `storage_s3_api_request_duration_seconds_sum${labels({ operation })} ${d.sum}`,
                `storage_s3_api_request_duration_seconds_count${labels({ operation })} ${d.count}`,
            );
        }
        lines.push(
            "# HELP storage_s3_api_received_bytes_total Request body bytes received from clients.",
            "# TYPE storage_s3_api_received_bytes_total counter",
            `storage_s3_api_received_bytes_total ${this.bytesIn}`,
            "# HELP storage_s3_api_sent_bytes_total Response bytes (headers and bodies) sent to clients.",
            "# TYPE storage_s3_api_sent_bytes_total counter",
            `storage_s3_api_sent_bytes_total ${this.bytesOut}`,
            "# HELP storage_s3_api_vault_calls_total Calls made to Vault's transit engine.",
            "# TYPE storage_s3_api_vault_calls_total counter",
            `storage_s3_api_vault_calls_total ${this.vaultCalls()}`,
        );
        return `${lines.join("\n")}\n`;
    }
}

/** One JSON line per event on stdout, for the cluster's log collector. */
export function logLine(level: "info" | "warn" | "error", message: string, fields: object = {}): void {
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
}

export interface OpsOptions {
    metrics: Metrics;
    /** Throws (with a reason safe to show) when a dependency is not reachable. */
    checkDependencies: () => Promise<void>;
    /** True once shutdown began: readiness fails so no new traffic is sent. */
    draining: () => boolean;
}

/** /livez (the process answers), /readyz (backend and Vault reachable, not draining), /metrics. */
export function createOpsServer(options: OpsOptions): http.Server {
    let lastCheck = { at: 0, failure: undefined as string | undefined };
    async function readiness(): Promise<string | undefined> {
        if (options.draining()) return "shutting down";
        if (Date.now() - lastCheck.at > 2_000) {
            const failure = await options.checkDependencies().then(
                () => undefined,
                (err: unknown) => (err instanceof Error ? err.message : "a dependency is unavailable"),
            );
            lastCheck = { at: Date.now(), failure };
        }
        return lastCheck.failure;
    }
    return http.createServer((req, res) => {
        const answer = (status: number, body: string, type = "text/plain; charset=utf-8") => {
            res.writeHead(status, { "Content-Type": type }).end(body);
        };
        if (req.method !== "GET") return answer(405, "GET only\n");
        if (req.url === "/livez") return answer(200, "ok\n");
        if (req.url === "/metrics") return answer(200, options.metrics.render(), "text/plain; version=0.0.4");
        if (req.url === "/readyz") {
            void readiness().then((failure) => (failure ? answer(503, `${failure}\n`) : answer(200, "ready\n")));
            return;
        }
        answer(404, "not found\n");
    });
}

/**
 * Stops taking connections, lets requests in flight finish (idle keep-alive connections are closed as
 * they become idle), and cuts what is left after `graceMs`.
 */
export function closeGracefully(server: http.Server, graceMs: number): Promise<void> {
    return new Promise((resolve) => {
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
            clearInterval(idle);
            clearTimeout(cut);
            resolve();
        });
        server.closeIdleConnections();
    });
}
