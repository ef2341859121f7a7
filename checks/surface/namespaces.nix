# The namespaces the offline surface declares in full: a definition under one of them that names
# no declared option is a typo, and fails as it would on NixOS ("The option `…' does not exist.
# … Did you mean …?"). So is a name two edits or fewer from one of them beside it
# (`services.opensh`), when the namespace's own name has four characters or more. Everywhere else
# an undeclared definition is accepted and reported as "not judged offline" (unjudged.nix),
# because the surface re-declares only part of NixOS.
#
# `except` lists the sub-namespaces of an entry that upstream has but the surface does not
# declare (they stay "not judged" rather than errors). A test holds every entry to being
# declared (lib.surfaceNamespaces), and docs/surface.md lists them.
[
  { path = "paranoid"; }
  { path = "surface"; }
  { path = "services.openssh"; }
  { path = "services.journald"; }
  { path = "services.tailscale"; }
  { path = "services.clamav"; }
  { path = "networking.firewall"; }
  { path = "networking.nftables"; }
  { path = "nix"; }
  { path = "security.sudo"; }
  { path = "security.sudo-rs"; }
  { path = "security.doas"; }
  { path = "security.audit"; }
  { path = "security.auditd"; }
  { path = "fileSystems"; }
  { path = "users"; except = [ "ldap" ]; }
  { path = "boot.tmp"; }
  { path = "specialisation"; }
]
