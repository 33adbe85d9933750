import { main } from "../../src/cli/main.js";

/** Runs the CLI in-process, as a user would from `cwd`, and returns what it printed. */
export async function runCli(
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
  stdin = "",
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    cwd,
    env,
    isTTY: false,
    readStdin: async () => stdin,
  });
  return { code, stdout, stderr };
}
