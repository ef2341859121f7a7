# `modulesPath` on the offline surface (lib.evalSurface passes this directory): hosts import
# upstream modules from it (`modulesPath + "/installer/scan/not-detected.nix"`). The small ones
# beside this file reproduce their upstream's definitions; what they define that the surface does
# not declare is recorded as "not judged offline" like any host definition. A larger one (an
# image, cloud, container or installer profile) is this stand-in: the import is accepted and
# named in the report as an effect that could not be judged. For a path no file here has, the
# harness retries with a generated one (docs/harness.md, "Upstream modules from modulesPath").
path: extra:
{
  surface.unmodelled = [
    {
      option = "imports: <modulesPath>/${path}";
      effect = "an upstream module the offline surface does not reproduce: what it configures (services, accounts, SSH, firewall, boot) is not judged${extra}";
    }
  ];
}
