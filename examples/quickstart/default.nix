# The quick start's host for `paranoid-harness check --module examples/quickstart`: the two
# modules ./flake.nix lists after paranoid's own (which `check` imports itself).
{ imports = [ ./configuration.nix ./paranoid.nix ]; }
