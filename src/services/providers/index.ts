import { ProvisionError } from "../errors.js";
import type { ServiceKindModule } from "../kinds/kind.js";
import type { ServiceProviderModule } from "./provider.js";

export type { ProviderContext, ServerProvider, ServiceProviderModule } from "./provider.js";

/**
 * Every service provider by the name configurations give it: a new provider is one module and
 * one line here. Each says what it can run; its module is loaded when a laboratory first uses it.
 */
const PROVIDERS = {
  local: {
    createsServers: true,
    offers: (kind) => kind.native !== undefined,
    open: async ({ registry }) => (await import("./local.js")).localProvider(registry),
  },
  docker: {
    createsServers: true,
    offers: (kind) => kind.container !== undefined,
    open: async ({ registry, docker }) => (await import("./docker.js")).dockerProvider(registry, docker),
  },
  external: {
    createsServers: false,
    offers: () => true,
    open: async () => (await import("./external.js")).externalProvider(),
  },
  aws: notYetAvailable("aws", "RDS and ElastiCache come later"),
} satisfies Record<string, ServiceProviderModule>;

export type Provider = keyof typeof PROVIDERS;

/** The names of the providers, as the configuration's schema accepts them. */
export const PROVIDER_NAMES = Object.keys(PROVIDERS) as [Provider, ...Provider[]];

/** The registry's entry of a provider. */
export function serviceProvider(provider: Provider): ServiceProviderModule {
  return PROVIDERS[provider];
}

/** The providers that can run `kind` (and, with `ownServer`, make a server for it), in the registry's order. */
export function providersOffering(kind: ServiceKindModule, ownServer = false): Provider[] {
  return PROVIDER_NAMES.filter((name) => {
    const provider = serviceProvider(name);
    return !provider.planned && provider.offers(kind) && (!ownServer || provider.createsServers);
  });
}

/**
 * A provider configurations may name that this labtest cannot run yet: every service on it
 * fails its check, before anything is made, saying so.
 */
function notYetAvailable(name: string, why: string): ServiceProviderModule {
  const refuse = async (): Promise<never> => {
    throw new ProvisionError(`provider ${name} is not available yet`, [
      {
        where: `provider: ${name}`,
        what: why,
        fix: `use provider: ${PROVIDER_NAMES.filter((p) => !serviceProvider(p).planned).join(", ")}`,
      },
    ]);
  };
  const nothing = async () => undefined;
  return {
    planned: true,
    createsServers: true,
    offers: () => true,
    open: async () => ({
      check: refuse,
      ensure: refuse,
      stop: refuse,
      remove: nothing,
      attach: refuse,
      releaseExperiment: nothing,
      tools: refuse,
      logs: async () => "",
      stopped: async () => true,
      sweep: nothing,
    }),
  };
}
