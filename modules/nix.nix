# The Nix daemon for root (or @wheel) only, no channels, and optionally no path to the public cache.
{ config, lib, ... }:
let
  inherit (lib) mkOption types mkIf mkDefault mkMerge;
  h = import ../lib/module-helpers.nix { inherit lib; };
  cfg = config.paranoid.nix;
  allowed =
    if cfg.allowedUsers == "root" then [ "root" ]
    else if cfg.allowedUsers == "wheel" then [ "@wheel" ]
    else cfg.allowedUsers;
  posture = import ../lib/posture { inherit lib; render = import ../lib/render.nix { inherit lib; }; };
  # Whom the daemon will trust, as it reads nix.conf: trusted-users, extra-trusted-users,
  # nix.extraOptions and the daemon's NIX_CONFIG all count.
  effective = (posture.of { inherit config; }).nix;
  extraTrusted = if effective == null then [ ] else lib.subtractLists [ "root" ] effective.trustedUsers.value;
  v4 = lib.filter (r: !(lib.hasInfix ":" r)) cfg.binaryCacheRanges;
  v6 = lib.filter (r: lib.hasInfix ":" r) cfg.binaryCacheRanges;
  nftSet = l: "{ ${lib.concatStringsSep ", " l} }";
in
{
  options.paranoid.nix = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Restrict who may talk to the Nix daemon (`nix.settings.allowed-users`) and refuse to let
        anyone but root be a trusted user. Breaks: `nix build`, `nix-shell` and `nix profile`
        for everyone outside the allowed set; deploy from a management host instead.
      '';
    };
    allowedUsers = mkOption {
      type = types.either (types.enum [ "root" "wheel" ]) (types.listOf types.str);
      default = "wheel";
      example = [ "root" "@deployers" ];
      description = "Who may use the daemon: `root`, `wheel` (members of @wheel), or an explicit `allowed-users` list.";
    };
    disableChannels = mkOption {
      type = types.bool;
      default = false;
      description = "Remove nix-channel and channel-based NIX_PATH entries (`nix.channel.enable = false`); the system comes from a flake or a deployer.";
    };
    blockBinaryCache = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Reject all outgoing traffic to `binaryCacheRanges` (Fastly, which serves cache.nixos.org)
        and substitute only from `paranoid.nix.substituters`. Breaks: every download from Fastly
        (including cache.nixos.org and many other sites); closures must arrive with `nix copy`.
        The recipe suggests doing this on a firewall in front of the host too, which survives
        a compromise of the host.
      '';
    };
    binaryCacheRanges = mkOption {
      type = types.listOf types.str;
      default = [ "151.101.0.0/16" "2a04:4e42::/32" ];
      description = "Destination ranges blocked by blockBinaryCache (IPv4 and IPv6).";
    };
    substituters = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "https://cache.internal.example" ];
      description = "With blockBinaryCache, the only substituters Nix uses (replacing cache.nixos.org).";
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      nix.settings.allowed-users = mkDefault allowed;
      nix.channel.enable = mkIf cfg.disableChannels (mkDefault false);

      assertions = [
        {
          assertion = extraTrusted == [ ];
          message = h.guard "nix-trusted-users" ''
            paranoid.nix.enable restricts the Nix daemon to ${h.showList allowed}, but the daemon would also trust
            ${h.showList extraTrusted} (${lib.concatMapStringsSep "; " (l: "`${l.text}` from ${l.origin.option}") effective.trustedUsers.lines}).
            Trusted users can import unsigned store paths and are effectively root, which undoes the restriction.
            Fix: remove them from nix.settings.trusted-users / extra-trusted-users / nix.extraOptions (deploy as root),
            or set paranoid.nix.enable = false.'';
        }
      ];
      warnings = lib.optional (cfg.allowedUsers == "root") (h.guard "nix-root-only" ''
        paranoid.nix.allowedUsers = "root": only root can use Nix on this host; wheel users must deploy as root.'');
    }
    (mkIf cfg.blockBinaryCache {
      nix.settings.substituters = lib.mkForce cfg.substituters;
      networking.nftables.tables.paranoid-egress = mkIf config.networking.nftables.enable {
        family = "inet";
        content = ''
          chain output {
            type filter hook output priority filter; policy accept;
            ${lib.optionalString (v4 != [ ]) "ip daddr ${nftSet v4} counter reject with icmpx type admin-prohibited comment \"paranoid: binary cache egress block\""}
            ${lib.optionalString (v6 != [ ]) "ip6 daddr ${nftSet v6} counter reject with icmpx type admin-prohibited comment \"paranoid: binary cache egress block\""}
          }
        '';
      };
      networking.firewall.extraCommands = mkIf (!config.networking.nftables.enable) (lib.concatMapStrings
        (r: "${if lib.hasInfix ":" r then "ip6tables" else "iptables"} -w -A OUTPUT -d ${r} -j REJECT\n") cfg.binaryCacheRanges);
      networking.firewall.extraStopCommands = mkIf (!config.networking.nftables.enable) (lib.concatMapStrings
        (r: "${if lib.hasInfix ":" r then "ip6tables" else "iptables"} -w -D OUTPUT -d ${r} -j REJECT || true\n") cfg.binaryCacheRanges);
      assertions = [
        {
          assertion = config.networking.nftables.enable || config.networking.firewall.enable;
          message = h.guard "nix-cache-block-inert" ''
            paranoid.nix.blockBinaryCache needs a packet filter to load its rules, but neither
            networking.nftables.enable nor networking.firewall.enable is set, so nothing is blocked.
            Fix: set paranoid.firewall.enable = true (or networking.nftables.enable = true).'';
        }
      ];
      warnings = [
        (h.guard "nix-cache-blocked" ''
          paranoid.nix.blockBinaryCache rejects all egress to ${h.showList cfg.binaryCacheRanges} (Fastly). That also
          blocks cache.nixos.org and every other site Fastly serves; deploy closures with `nix copy`.'')
      ];
    })
  ]);
}
