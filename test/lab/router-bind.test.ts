import { existsSync } from "node:fs";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import { describe, expect, it, onTestFinished } from "vitest";
import { stopRouter } from "../../src/lab/router-control.js";
import { runCli } from "../support/cli.js";
import { scratchDir } from "../support/project.js";

const ROOT = join(import.meta.dirname, "../..");

/**
 * This machine's addresses that other machines of its networks can reach (not loopback, not
 * link-local). Docker's per-network bridges (`br-…`) are left out: other test files create and
 * remove them while this one runs, and a vanished address accepts nothing.
 */
const networkAddresses = Object.entries(networkInterfaces())
  .filter(([name]) => !name.startsWith("br-"))
  .flatMap(([, infos]) => infos ?? [])
  .filter((i) => !i.internal && !i.address.startsWith("fe80:"))
  .map((i) => i.address);
const ipv6Loopback = Object.values(networkInterfaces())
  .flat()
  .some((i) => i?.address === "::1");

/** Whether a TCP connection to `host`:`port` is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2000 });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
    socket.on("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** `labtest lab …` against an embedded laboratory in a scratch home, its router on a free port. */
async function lab() {
  expect(existsSync(join(ROOT, "dist/lab/router-daemon.js")), "run `npm run build` first").toBe(true);
  const home = await scratchDir("labtest-lab-");
  const port = await getPort({ host: "127.0.0.1" });
  onTestFinished(() => stopRouter(home).then(() => undefined));
  const env = { ...process.env, LABTEST_HOME: home, LABTEST_ROUTER_PORT: String(port) };
  return { port, cli: (...argv: string[]) => runCli(["lab", ...argv], home, env) };
}

describe("the embedded laboratory's router", () => {
  it("listens on this machine's loopback only, unless told otherwise", async () => {
    expect(networkAddresses.length, "a non-loopback address to try").toBeGreaterThan(0);
    const { port, cli } = await lab();
    const started = await cli("start");
    expect(started.stderr).toBe("");
    for (const address of networkAddresses) expect(await accepts(address, port), address).toBe(false);
    expect(await accepts("127.0.0.1", port)).toBe(true);
    if (ipv6Loopback) expect(await accepts("::1", port)).toBe(true);
    expect(started.stdout).toMatch(
      new RegExp(`^router running on localhost port ${port} \\(pid \\d+\\)\\n$`),
    );
  });

  it("binds the address its administrator gives, keeps it across restarts, and goes back when told", async () => {
    const { port, cli } = await lab();
    const everywhere = await cli("start", "--listen", "0.0.0.0");
    expect(everywhere.stdout).toMatch(
      new RegExp(`^router running on 0\\.0\\.0\\.0 port ${port} \\(pid \\d+\\)\\n$`),
    );
    const ipv4 = networkAddresses.filter((a) => !a.includes(":"));
    for (const address of ipv4) expect(await accepts(address, port), address).toBe(true);

    // Whoever starts it next without an address (lab start, or create after a crash) keeps it.
    await cli("stop");
    expect((await cli("start")).stdout).toMatch(/^router running on 0\.0\.0\.0 port/);
    for (const address of ipv4) expect(await accepts(address, port), address).toBe(true);

    const back = await cli("start", "--listen", "localhost");
    expect(back.stdout).toMatch(/^router running on localhost port/);
    expect((await cli("status")).stdout).toMatch(/^router running on localhost port/);
    for (const address of networkAddresses) expect(await accepts(address, port), address).toBe(false);
    expect(await accepts("127.0.0.1", port)).toBe(true);
  });

  it("refuses an address that is not an IP address or localhost", async () => {
    const { cli } = await lab();
    const refused = await cli("start", "--listen", "lab.example.com");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/'lab\.example\.com' is not localhost or an IP address/);
    expect((await cli("status")).stdout).toBe("router not running\n");
  });
});
