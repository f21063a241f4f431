// Questions in the terminal: a secret asked without echo, a confirmation typed out. Neither is asked when
// stdin is not a terminal: a script gives the environment variable or --yes instead.
import * as readline from "node:readline";
import { UsageError } from "./project";

function ask(question: string, hidden: boolean): Promise<string> {
    if (!process.stdin.isTTY) {
        return Promise.reject(new UsageError(`cannot ask "${question.trim()}": stdin is not a terminal`));
    }
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    if (hidden) {
        // readline echoes through _writeToOutput; write the question only, never what is typed.
        (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
            if (s.includes(question)) process.stderr.write(question);
        };
    }
    return new Promise((resolve) =>
        rl.question(question, (answer) => {
            rl.close();
            if (hidden) process.stderr.write("\n");
            resolve(answer.trim());
        }),
    );
}

export const askHidden = (question: string) => ask(question, true);

/** Whether the person typed `expected` in answer. */
export async function confirm(question: string, expected: string): Promise<boolean> {
    return (await ask(question, false)) === expected;
}
