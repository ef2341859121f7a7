# serviceConfig presets for paranoid.services.<name>.sandbox. Every entry is applied with
# mkDefault, so a service's own serviceConfig always wins key by key.
# Scores are `systemd-analyze security` exposure levels measured by the sandbox tier.
rec {
  # Nothing added: the service keeps whatever it declares.
  none = { };

  # Safe for almost any daemon: no privilege gain, read-only OS, private /tmp and /dev, no
  # kernel tuning. Breaks services that write outside StateDirectory/ReadWritePaths, need
  # devices, or load kernel modules.
  baseline = {
    NoNewPrivileges = true;
    ProtectSystem = "full";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    RestrictSUIDSGID = true;
    RestrictRealtime = true;
    LockPersonality = true;
  };

  # The recipe's list taken as far as a network daemon can go. Additionally breaks: writing
  # anywhere but StateDirectory/RuntimeDirectory/ReadWritePaths (ProtectSystem=strict), JITs
  # (MemoryDenyWriteExecute), raw sockets and netlink (RestrictAddressFamilies), setuid
  # helpers, and any privileged system call; files it creates are private (UMask=0077).
  strict = baseline // {
    ProtectSystem = "strict";
    ProtectClock = true;
    ProtectHostname = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    PrivateIPC = true;
    PrivateUsers = true;
    RestrictNamespaces = true;
    MemoryDenyWriteExecute = true;
    RemoveIPC = true;
    KeyringMode = "private";
    DevicePolicy = "closed";
    UMask = "0077";
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    SystemCallArchitectures = "native";
    SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
    SystemCallErrorNumber = "EPERM";
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
  };
}
