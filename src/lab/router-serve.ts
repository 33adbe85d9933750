/**
 * The router's serving process, once its entry point (laboratory/router-process.ts, run by the
 * router's daemon) has said where its routes come from. It exits when it cannot listen on one of
 * its addresses (its daemon starts it again), and when its daemon is gone (a router nobody
 * supervises would keep the port from the next one).
 */
import { Registry } from "./registry.js";
import { createRouter, listenAddresses, type RouterOptions } from "./router.js";
import type { ServingSettings } from "./router-control.js";

/** Where the router's routes come from, and why an app does not answer: read for every request. */
export type RouteSource = Pick<RouterOptions, "route" | "routes" | "whyNoAnswer"> & {
  /** Lets go of what the source holds open, as the process stops. */
  close(): void;
};

/** Serves `source`'s routes for the laboratory at `home` on `port` of `address`, with `settings`, until stopped. */
export function serveRouter(
  home: string,
  port: number,
  address: string,
  settings: ServingSettings,
  source: RouteSource,
): void {
  const { close, ...routes } = source;
  const options: RouterOptions = { ...routes, ...settings, laboratory: new Registry(home).id };
  // One server per address: a Node server listens on one, and `*.localhost` may resolve to either loopback.
  const servers = listenAddresses(address).map((host) =>
    createRouter(options)
      .on("error", (error) => {
        process.stderr.write(
          `${new Date().toISOString()} cannot listen on ${host} port ${port}: ${error.message}\n`,
        );
        process.exit(1);
      })
      .listen(port, host),
  );

  function stop(): void {
    for (const server of servers) server.close();
    close();
    process.exit(0);
  }
  process.on("SIGTERM", stop);
  process.on("disconnect", stop);
}
