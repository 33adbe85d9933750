import { imageTag } from "../../config/schema.js";
import {
  containerLogs,
  type Docker,
  dockerEngine,
  ensureExperimentNetwork,
  execIn,
  experimentNetwork,
  ignoreNotFound,
  inspectContainer,
  pullIfMissing,
  releaseExperimentNetwork,
} from "../../lab/docker.js";
import { LABELS } from "../../lab/labels.js";
import { randomPassword } from "../../lab/passwords.js";
import type { Registry } from "../../lab/registry.js";
import { ProvisionError } from "../errors.js";
import type { RunProgram } from "../kinds/kind.js";
import type { Endpoint, Owner } from "../model.js";
import { kindRecipe, type ServerProvider, type ServerRecord, type ServerSpec } from "./provider.js";

/** The image of a spec: its image (official repository by default), tagged with its version unless it has a tag. */
export function imageReference(spec: ServerSpec): string {
  const { repository, version } = kindRecipe(spec.kind, spec.module, "container");
  const image = spec.image ?? repository;
  const name = image.slice(image.lastIndexOf("/") + 1);
  if (name.includes(":") || name.includes("@")) return image;
  return `${image}:${spec.version ?? version}`;
}

/** Where the laboratory host reaches a container's `port`: published afresh at each start, so asked for each time. */
function publishedEndpoint(info: Docker.ContainerInspectInfo, port: number): Endpoint | null {
  const binding = info.NetworkSettings.Ports?.[`${port}/tcp`]?.[0];
  return binding ? { host: "127.0.0.1", port: Number(binding.HostPort) } : null;
}

/** Servers as containers of a Docker Engine (DOCKER_HOST or the local socket). */
export function dockerProvider(registry: Registry, docker: Docker = dockerEngine()): ServerProvider {
  const labelsOf = (spec: { kind: string; provisionType: string; owner: Owner | null; id: string }) => ({
    [LABELS.laboratory]: registry.id,
    [LABELS.server]: spec.id,
    [LABELS.kind]: spec.kind,
    [LABELS.provisionType]: spec.provisionType,
    ...(spec.owner
      ? {
          [LABELS.app]: spec.owner.app,
          [LABELS.experiment]: spec.owner.experiment,
          [LABELS.service]: spec.owner.service,
        }
      : {}),
  });

  const inspect = (name: string) => inspectContainer(docker, name);

  const ensureImage = (image: string) =>
    pullIfMissing(docker, image, {
      where: "the service's options.image (or the state default /services/docker/<kind>/<app> image)",
      fix: "set it to an image the laboratory has",
    });

  const ensureNetwork = (owner: Owner) =>
    ensureExperimentNetwork(docker, registry, owner.app, owner.experiment);

  async function removeContainer(name: string, volume: string | null): Promise<void> {
    await docker.getContainer(name).remove({ force: true, v: true }).catch(ignoreNotFound);
    if (volume) await docker.getVolume(volume).remove().catch(ignoreNotFound);
  }

  return {
    // An image's tag says what it runs: the version option only tags an image that has none.
    // Earlier, a server was named for the version option or the kind's default version.
    communalIdentity(spec) {
      const image = imageReference(spec);
      return {
        distinct: image,
        version: imageTag(image) ?? spec.version ?? "default",
        formerVersion: spec.version ?? kindRecipe(spec.kind, spec.module, "container").version,
      };
    },
    check: (spec) => ensureImage(imageReference(spec)),

    async ensure(spec, previous, save) {
      const image = imageReference(spec);
      const volume =
        kindRecipe(spec.kind, spec.module, "container").dataDirectory && !spec.ephemeral
          ? `${spec.id}-data`
          : null;
      let info = await inspect(spec.id);
      if (info && !previous) {
        // Ours (labelled) and unrecorded: a command crashed between creating and recording it,
        // so nobody has its credentials. Anything else by that name is not ours to remove.
        if (info.Config.Labels[LABELS.laboratory] !== registry.id)
          throw new ProvisionError(`a container named ${spec.id} exists and is not this laboratory's`, [
            {
              where: `container ${spec.id}`,
              what: "labtest names its servers this way and will not take over or remove another container",
              fix: `remove or rename that container (docker rm -f ${spec.id}), or use another LABTEST_HOME`,
            },
          ]);
        await removeContainer(spec.id, volume);
        info = undefined;
      }
      const password = previous?.admin.password ?? randomPassword();
      const record: ServerRecord = previous ?? {
        id: spec.id,
        provider: "docker",
        kind: spec.kind,
        provisionType: spec.provisionType,
        owner: spec.owner,
        admin: { host: "127.0.0.1", port: 0, user: spec.module.adminUser, password },
        details: { container: spec.id, volume, image, containerPort: spec.module.port },
        createdAt: new Date().toISOString(),
      };
      if (!info) {
        await ensureImage(image);
        const labels = labelsOf(spec);
        // A dedicated server lives on its experiment's network only, under its service's name:
        // joining at creation costs less than connecting a running container.
        const [network] = await Promise.all([
          spec.owner ? ensureNetwork(spec.owner) : null,
          volume ? docker.createVolume({ Name: volume, Labels: labels }) : null,
        ]);
        const recipe = kindRecipe(spec.kind, spec.module, "container");
        const { entrypoint, cmd } = spec.command
          ? { entrypoint: undefined, cmd: spec.command }
          : recipe.command({ ephemeral: spec.ephemeral, adminPassword: password });
        const port = `${spec.module.port}/tcp`;
        const data = recipe.dataDirectory;
        await docker.createContainer({
          name: spec.id,
          Image: image,
          Labels: labels,
          Env: Object.entries({ ...recipe.adminEnvironment(password), ...spec.environment }).map(
            ([key, value]) => `${key}=${value}`,
          ),
          ...(entrypoint ? { Entrypoint: entrypoint } : {}),
          ...(cmd ? { Cmd: cmd } : {}),
          ExposedPorts: { [port]: {} },
          HostConfig: {
            PortBindings: { [port]: [{ HostIp: "127.0.0.1", HostPort: "" }] },
            RestartPolicy: { Name: "unless-stopped" },
            ...(volume && data ? { Mounts: [{ Type: "volume", Source: volume, Target: data }] } : {}),
            ...(spec.ephemeral && data ? { Tmpfs: { [data]: "rw" } } : {}),
            ...(network ? { NetworkMode: network } : {}),
          },
          ...(network && spec.owner
            ? { NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [spec.owner.service] } } } }
            : {}),
        });
        await save(record);
      }
      // Found: it may have lost its network behind labtest's back, and with it its published port.
      else if (spec.owner) await ensureNetwork(spec.owner);
      if (!info?.State.Running) await docker.getContainer(spec.id).start();
      info = await inspect(spec.id);
      const endpoint = info && publishedEndpoint(info, spec.module.port);
      if (!endpoint)
        throw new ProvisionError(
          info?.State.Running
            ? `container ${spec.id} runs but publishes no port`
            : `container ${spec.id} stopped right after it started`,
          [
            {
              where: `container ${spec.id}`,
              what: `its last log lines:\n${await containerLogs(docker.getContainer(spec.id), 30).catch(() => "")}`,
            },
          ],
        );
      return { ...record, admin: { ...record.admin, ...endpoint } };
    },

    async state(record, owner) {
      const name = String(record.details.container);
      const info = await inspect(name);
      if (!info)
        return {
          running: false,
          endpoint: null,
          problem: `its container ${name} is gone (removed outside labtest)`,
        };
      if (!info.State.Running)
        return {
          running: false,
          endpoint: null,
          problem: `its container ${name} is ${info.State.Status} (exit ${info.State.ExitCode})`,
        };
      const network = owner && experimentNetwork(registry.id, owner.app, owner.experiment);
      const problem =
        network && !info.NetworkSettings.Networks[network]
          ? `its container ${name} is not on its network ${network} (removed or disconnected outside labtest): labtest services up or labtest update reconnects it`
          : null;
      return {
        running: true,
        endpoint: publishedEndpoint(info, Number(record.details.containerPort)),
        problem,
      };
    },

    async stop(record) {
      await docker
        .getContainer(String(record.details.container))
        .stop()
        .catch((error: { statusCode?: number }) => {
          // 304: it was not running.
          if (error.statusCode !== 304) ignoreNotFound(error);
        });
    },

    async remove(record) {
      await removeContainer(
        String(record.details.container),
        (record.details.volume as string | null) ?? null,
      );
    },

    async attach(record, owner) {
      const name = await ensureNetwork(owner);
      const network = docker.getNetwork(name);
      const container = String(record.details.container);
      const dedicated = record.provisionType === "independent";
      const info = await inspect(container);
      if (!info?.NetworkSettings.Networks[name]) {
        await network
          .connect({ Container: container, EndpointConfig: { Aliases: dedicated ? [owner.service] : [] } })
          .catch((error: { statusCode?: number }) => {
            // Another service of the experiment connected the same communal server first.
            if (error.statusCode !== 403 && error.statusCode !== 409) throw error;
          });
      }
      return { host: dedicated ? owner.service : container, port: Number(record.details.containerPort) };
    },

    async releaseExperiment(app, experiment) {
      // Its dedicated servers go too, found by label: a command killed between making one (or its
      // volume) and recording it leaves one that no record names.
      const labels = [
        `${LABELS.laboratory}=${registry.id}`,
        `${LABELS.app}=${app}`,
        `${LABELS.experiment}=${experiment}`,
      ];
      const filters = { label: [...labels, LABELS.server] };
      for (const c of await docker.listContainers({ all: true, filters }))
        await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignoreNotFound);
      for (const v of (await docker.listVolumes({ filters })).Volumes ?? [])
        await docker.getVolume(v.Name).remove().catch(ignoreNotFound);
      await releaseExperimentNetwork(docker, registry.id, app, experiment);
    },

    async sweep(servers, experiments, sweep) {
      const ours = { filters: { label: [`${LABELS.laboratory}=${registry.id}`] } };
      const old = (created: number) => sweep.old(created);
      const why = "no server record accounts for it";
      // Only servers are this sweep's: other objects of the laboratory (apps) carry no server label.
      const unaccounted = (server: string | undefined) => server !== undefined && !servers.has(server);
      for (const c of await docker.listContainers({ all: true, ...ours }))
        if (unaccounted(c.Labels[LABELS.server]) && old(c.Created * 1000))
          await sweep.remove(`container ${c.Names[0]?.replace(/^\//, "") ?? c.Id}`, why, () =>
            docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignoreNotFound),
          );
      for (const v of (await docker.listVolumes(ours)).Volumes ?? [])
        if (
          unaccounted(v.Labels?.[LABELS.server]) &&
          old(Date.parse((v as { CreatedAt?: string }).CreatedAt ?? ""))
        )
          await sweep.remove(`volume ${v.Name}`, why, () =>
            docker.getVolume(v.Name).remove().catch(ignoreNotFound),
          );
      for (const n of await docker.listNetworks(ours)) {
        const experiment = `${n.Labels?.[LABELS.app]}/${n.Labels?.[LABELS.experiment]}`;
        if (experiments.has(experiment) || !old(Date.parse(n.Created))) continue;
        const { Containers } = (await docker.getNetwork(n.Id).inspect()) as {
          Containers?: Record<string, unknown>;
        };
        if (Object.keys(Containers ?? {}).length > 0) continue;
        await sweep.remove(`network ${n.Name}`, "nothing is attached to it", () =>
          docker.getNetwork(n.Id).remove().catch(ignoreNotFound),
        );
      }
    },

    async tools(record) {
      const container = docker.getContainer(String(record.details.container));
      const run: RunProgram = async (program, args, options = {}) => {
        for (const name of typeof program === "string" ? [program] : program) {
          const result = await execIn(container, [name, ...args], options.env ?? {}, options.input);
          // 126/127: the image has no such program; the next name may be the one it has.
          if (result.exitCode === 126 || result.exitCode === 127) continue;
          if (result.exitCode !== 0)
            throw new ProvisionError(`${name} failed in container ${record.id} (exit ${result.exitCode})`, [
              {
                where: `container ${record.id}`,
                what: result.stderr.trim().split("\n").slice(-10).join("\n"),
              },
            ]);
          return result.stdout;
        }
        throw new ProvisionError(`image of ${record.id} has no ${[program].flat().join(" or ")}`, [
          {
            where: `container ${record.id}`,
            what: "the program is not in the image",
            fix: "use an image that ships its client programs (the official ones do)",
          },
        ]);
      };
      // Inside the container the server answers on its own port, on loopback.
      return {
        run,
        admin: { ...record.admin, host: "127.0.0.1", port: Number(record.details.containerPort) },
      };
    },

    async stopped(record) {
      const info = await inspect(String(record.details.container));
      return !info || info.State.Status === "exited" || info.State.Status === "dead";
    },

    async logs(record) {
      try {
        return await containerLogs(docker.getContainer(String(record.details.container)), 30);
      } catch (error) {
        return `(no logs: ${(error as Error).message})`;
      }
    },
  };
}
