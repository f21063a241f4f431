// Prometheus text metrics for GET /metrics: counters only, kept in this process. storage-s3-api renders its
// own the same way; services share no code, so this one is its own and small.

const labels = (values: Record<string, string>) =>
    `{${Object.entries(values)
        .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, "\\$&")}"`)
        .join(",")}}`;

/** A counter by a fixed list of label names. */
class Counter {
    private readonly values = new Map<string, number>();

    constructor(
        readonly name: string,
        readonly help: string,
        private readonly labelNames: string[] = [],
    ) {}

    add(labelValues: string[] = [], n = 1): void {
        const key = labelValues.join("\0");
        this.values.set(key, (this.values.get(key) ?? 0) + n);
    }

    get(labelValues: string[] = []): number {
        return this.values.get(labelValues.join("\0")) ?? 0;
    }

    render(): string[] {
        const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
        if (this.labelNames.length === 0) return [...lines, `${this.name} ${this.get()}`];
        for (const [key, n] of this.values) {
            const values = key.split("\0");
            lines.push(`${this.name}${labels(Object.fromEntries(this.labelNames.map((l, i) => [l, values[i]])))} ${n}`);
        }
        return lines;
    }
}

export class KvMetrics {
    readonly requests = new Counter(
        "storage_kv_api_requests_total",
        "HTTP requests answered, by operation and status.",
        ["operation", "status"],
    );
    readonly writeRetries = new Counter(
        "storage_kv_api_write_retries_total",
        "Writes started again after losing a race to another writer of the same document.",
        ["operation"],
    );
    readonly writeRetriesExhausted = new Counter(
        "storage_kv_api_write_retries_exhausted_total",
        "Writes answered 503 SlowDown after losing every allowed attempt.",
        ["operation"],
    );
    readonly pagesCollected = new Counter(
        "storage_kv_api_pages_collected_total",
        "Index pages deleted once no manifest named them any longer.",
    );

    render(): string {
        const all = [this.requests, this.writeRetries, this.writeRetriesExhausted, this.pagesCollected];
        return `${all.flatMap((c) => c.render()).join("\n")}\n`;
    }
}
