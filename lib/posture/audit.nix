# Whether the kernel still records a program run from outside the store, judged on the rule
# file audit-rules-nixos loads (security.audit: -D, limits, the rules in order, -e) with the
# kernel's filter semantics (kernel/auditfilter.c, auditsc.c):
# - `task` list: a matching `never` rule gives the process no audit context: no syscall records;
# - `exit` list: rules in order (`-A` prepends, `-d` deletes), the FIRST whose fields all match
#   decides (`always` records, `never` does not); no match records nothing;
# - `exclude` list: any matching rule drops records of that type, whatever its action.
# Each scenario is one concrete execve/execveat of /tmp/paranoid-probe by a login user, by root
# and by a daemon, for both ABIs. `paths` judges the other places a foreign program can run
# from (/var/tmp, /dev/shm, each login user's home and /run/user/<uid>, /root, /var/lib, /srv),
# a 64-bit execve by the login user (root for /root), so a `never` rule aimed at one of them
# (`-F dir=/home`, `-F exe!=/tmp/…`) is seen. A field this model cannot evaluate makes a
# `never`/`exclude` rule count as matching (it might suppress) and an `always` rule as not
# matching. A rate limit (`-r N`, N > 0) makes the kernel drop every record over N a second
# (kernel/audit.c audit_log_end → audit_rate_check), execve records included.
{ lib, origin }:
{ config, options ? null, render }:
let
  inherit (lib) filter head tail elem elemAt length concatMap splitString hasPrefix optional unique any all toInt;
  audit = config.security.audit;
  enabled = audit.enable != false;

  rulesOpt = origin.at options [ "security" "audit" "rules" ];

  text = render.auditRules audit;
  lines = lib.imap1 (n: t: { line = n; text = lib.trim t; }) (splitString "\n" text);
  userRules = map lib.trim audit.rules;
  originOf = t:
    if elem t userRules then { option = "security.audit.rules"; files = origin.filesWhere rulesOpt (v: builtins.isList v && elem t (map lib.trim v)); }
    else if hasPrefix "-b" t then { option = "security.audit.backlogLimit"; files = [ ]; }
    else if hasPrefix "-e" t then { option = "security.audit.enable"; files = [ ]; }
    else if hasPrefix "-r" t then { option = "security.audit.rateLimit"; files = origin.files (origin.at options [ "security" "audit" "rateLimit" ]); }
    else { option = "security.audit"; files = [ ]; };

  words = s: filter (x: x != "") (splitString " " (builtins.replaceStrings [ "\t" ] [ " " ] s));

  # One auditctl line → a command.
  parse =
    l:
    let
      ws = words l.text;
      go = acc: xs:
        if xs == [ ] then acc
        else
          let x = head xs; v = if tail xs == [ ] then null else head (tail xs); rest = lib.drop 2 xs; in
          if elem x [ "-a" "-A" "-d" ] && v != null then
            let
              parts = splitString "," v;
              actions = [ "always" "never" ];
              action = lib.findFirst (p: elem p actions) null parts;
              list = lib.findFirst (p: !(elem p actions)) null parts;
            in go (acc // { op = x; inherit action list; }) rest
          else if x == "-S" && v != null then go (acc // { syscalls = acc.syscalls ++ splitString "," v; }) rest
          else if x == "-F" && v != null then
            let m = builtins.match "([a-z_0-9]+)(!=|<=|>=|&=|=|<|>|&)(.*)" v; in
            go (acc // { fields = acc.fields ++ [ (if m == null then { field = v; op = "?"; value = ""; } else { field = elemAt m 0; op = elemAt m 1; value = elemAt m 2; }) ]; }) rest
          else if elem x [ "-k" "-p" "-w" "-W" "-b" "-f" "-r" "-e" "-c" "-i" "--backlog_wait_time" "--reset-lost" ] then
            go (acc // lib.optionalAttrs (x == "-w") { op = "-w"; watch = v; } // lib.optionalAttrs (x == "-p") { perms = v; } // lib.optionalAttrs (x == "-e") { enableFlag = v; } // lib.optionalAttrs (x == "-r") { rate = v; }) (if elem x [ "-i" "--reset-lost" ] then tail xs else rest)
          else if x == "-D" then go (acc // { op = "-D"; }) (tail xs)
          else go (acc // { unknown = acc.unknown ++ [ x ]; }) (tail xs);
    in
    if l.text == "" || hasPrefix "#" l.text then null
    else l // go { op = null; syscalls = [ ]; fields = [ ]; unknown = [ ]; } ws // { origin = originOf l.text; };
  commands = filter (c: c != null) (map parse lines);

  sameRule = a: b: a.list == b.list && a.action == b.action && a.syscalls == b.syscalls && a.fields == b.fields;
  # The rule lists after every -a/-A/-d/-D, in kernel order.
  lists = lib.foldl' (acc: c:
    if c.op == "-D" then { }
    else if elem c.op [ "-a" "-A" ] && c.list != null then acc // { ${c.list} = if c.op == "-A" then [ c ] ++ acc.${c.list} or [ ] else acc.${c.list} or [ ] ++ [ c ]; }
    else if c.op == "-d" && c.list != null then acc // { ${c.list} = filter (r: !(sameRule r c)) (acc.${c.list} or [ ]); }
    else if c.op == "-w" then acc // { exit = acc.exit or [ ] ++ [ (c // { list = "exit"; action = "always"; }) ]; }
    else acc) { } commands;

  # ---- scenarios -------------------------------------------------------------------------------

  unset = 4294967295;
  # Record types by name and number (linux/audit.h), as msgtype= takes either.
  typeNumbers = { SYSCALL = "1300"; PATH = "1302"; CWD = "1307"; EXECVE = "1309"; PROCTITLE = "1327"; };
  scenarios = concatMap (who: concatMap (arch: map (syscall: who // { inherit arch syscall; exe = "/tmp/paranoid-probe"; dir = "/tmp"; success = true; })
    [ "execve" "execveat" ]) [ "b64" "b32" ])
    [
      { actor = "a login user"; uid = 1000; auid = 1000; }
      { actor = "root in a login session"; uid = 0; auid = 0; }
      { actor = "a daemon (no login uid)"; uid = 998; auid = unset; }
    ];

  num = s: if s == "unset" || s == "-1" then unset else if builtins.match "[0-9]+" s != null then toInt s else null;
  compare = op: a: b:
    if op == "=" then a == b else if op == "!=" then a != b
    else if op == "<" then a < b else if op == ">" then a > b
    else if op == "<=" then a <= b else if op == ">=" then a >= b
    else null;
  # true / false, or null when this model cannot evaluate the field for the scenario.
  fieldMatches = s: f:
    let n = num f.value; in
    if f.field == "arch" then compare f.op s.arch (if elem f.value [ "b64" "x86_64" "64" ] then "b64" else if elem f.value [ "b32" "i386" "32" ] then "b32" else f.value)
    else if elem f.field [ "auid" "loginuid" ] then (if n == null then null else compare f.op s.auid n)
    else if elem f.field [ "uid" "euid" "suid" "fsuid" ] then (if n == null then null else compare f.op s.uid n)
    else if f.field == "exe" then compare f.op s.exe f.value
    else if f.field == "path" then compare f.op s.exe f.value
    else if f.field == "dir" then (let r = lib.hasPrefix (lib.removeSuffix "/" f.value + "/") s.exe; in if f.op == "=" then r else if f.op == "!=" then !r else null)
    else if f.field == "success" then compare f.op (if s.success then 1 else 0) n
    else if elem f.field [ "key" "filterkey" ] then true
    else if f.field == "perm" then lib.hasInfix "x" f.value
    else null;
  syscallMatches = s: r:
    if r.op == "-w" then (r.watch == s.exe || lib.hasPrefix (lib.removeSuffix "/" r.watch + "/") s.exe) && lib.hasInfix "x" (r.perms or "rwxa")
    else if r.syscalls == [ ] || elem "all" r.syscalls then
      # Without -S every syscall of every ABI; with -S, an arch field picks the ABI (native otherwise).
      true
    else elem s.syscall r.syscalls && (any (f: f.field == "arch") r.fields || s.arch == "b64");
  # "yes", "no" or "maybe" (an unevaluable field).
  ruleMatches = s: r:
    let results = map (fieldMatches s) r.fields; in
    if !(syscallMatches s r) || elem false results then "no"
    else if elem null results then "maybe"
    else "yes";

  decide = s:
    let
      taskNever = filter (r: r.action == "never" && ruleMatches s r != "no") (lists.task or [ ]);
      # First exit rule that matches (a "maybe never" counts, a "maybe always" does not).
      first = lib.findFirst (r: let m = ruleMatches s r; in m == "yes" || (m == "maybe" && r.action == "never")) null (lists.exit or [ ]);
      recorded = taskNever == [ ] && first != null && first.action == "always";
      dropped = type: filter (r: ruleMatches (s // { inherit type; }) (r // { fields = filter (f: f.field != "msgtype") r.fields; syscalls = [ ]; }) != "no"
        && any (f: f.field == "msgtype" && compare f.op (typeNumbers.${f.value} or f.value) typeNumbers.${type} == true) r.fields) (lists.exclude or [ ]);
      show = r: r.line;
    in
    {
      id = "${s.actor}, ${s.arch} ${s.syscall}";
      inherit (s) actor arch syscall uid auid;
      syscallRecord = recorded && dropped "SYSCALL" == [ ];
      execveRecord = recorded && dropped "EXECVE" == [ ];
      decidedBy = if taskNever != [ ] then show (head taskNever) else if first == null then null else show first;
      droppedBy = map show (dropped "SYSCALL" ++ dropped "EXECVE");
      uncertain = (first != null && ruleMatches s first == "maybe") || any (r: ruleMatches s r == "maybe") taskNever;
    };
  results = map decide scenarios;

  # Every other place a foreign program can be run from, as a login user's 64-bit execve.
  loginUsers = lib.sort (a: b: a.uid < b.uid) (lib.mapAttrsToList (name: u: { inherit name; home = u.home or "/home/${name}"; uid = if u.uid or null == null then 1000 else u.uid; })
    (lib.filterAttrs (_: u: u.isNormalUser or false) (config.users.users or { })));
  someone = if loginUsers == [ ] then { name = "a login user"; home = "/home/user"; uid = 1000; } else head loginUsers;
  probe = dir: who: { inherit dir; exe = "${dir}/paranoid-probe"; actor = who.name; uid = who.uid; auid = who.uid; arch = "b64"; syscall = "execve"; success = true; };
  probes =
    [ (probe "/tmp" someone) (probe "/var/tmp" someone) (probe "/dev/shm" someone) (probe "/var/lib/paranoid-probe" someone) (probe "/srv" someone) ]
    ++ concatMap (u: [ (probe u.home u) (probe "/run/user/${toString u.uid}" u) ]) (if loginUsers == [ ] then [ someone ] else loginUsers)
    ++ [ (probe "/root" { name = "root"; uid = 0; }) ];
  pathResults = map (s: let r = decide s; in {
    inherit (s) exe actor;
    recorded = r.syscallRecord && r.execveRecord;
    inherit (r) decidedBy droppedBy uncertain;
  }) probes;

  # `-r N`: the last one loaded counts; 0 is no limit.
  rateCmds = filter (c: c ? rate) commands;
  rate = if rateCmds == [ ] then null else lib.last rateCmds;
  rateLimit = if rate == null || num rate.rate == 0 then null else { value = rate.rate; inherit (rate) line text origin; };

  # The kernel's command line: `audit=0` or `audit=off` disables the subsystem "and can not be
  # enabled until the next reboot" (kernel-parameters.txt); each `audit=` is parsed in turn, so
  # the last one counts. No rule records anything then.
  paramsOpt = origin.at options [ "boot" "kernelParams" ];
  auditParams = filter (p: hasPrefix "audit=" p) (config.boot.kernelParams or [ ]);
  kernelParam = if auditParams == [ ] then null else lib.last auditParams;
  kernelDisabled =
    if !(elem kernelParam [ "audit=0" "audit=off" ]) then null
    else { param = kernelParam; files = origin.filesWhere paramsOpt (v: builtins.isList v && any (p: elem p [ "audit=0" "audit=off" ]) v); };
  finalEnable = let e = filter (c: c ? enableFlag) commands; in if e == [ ] then null else (lib.last e).enableFlag;
in
if !enabled then null
else
{
  locked = finalEnable == "2";
  enabledFlag = finalEnable;
  file = text;
  rules = map (r: { inherit (r) line text origin list action; }) (concatMap (l: lists.${l}) (lib.attrNames lists));
  # The lines that delete rules (`-d`, `-D`): a rule they removed is in no list above.
  deletions = map (c: { inherit (c) line text origin; }) (filter (c: elem c.op [ "-d" "-D" ]) commands);
  inherit kernelDisabled;
  scenarios = if kernelDisabled == null then results else map (r: r // { syscallRecord = false; execveRecord = false; }) results;
  paths = if kernelDisabled == null then pathResults else map (r: r // { recorded = false; }) pathResults;
  # A rate limit over which the kernel drops records (null: none).
  inherit rateLimit;
  # Whether auditd runs: without it the kernel hands records to printk, which drops all but a
  # few every 5 s under load (kernel/audit.c kauditd_printk_skb → printk_ratelimit), and nothing
  # writes /var/log/audit: paranoid's "every execve logged" is not kept.
  auditd = config.security.auditd.enable or false;
  auditdFiles = origin.files (origin.at options [ "security" "auditd" "enable" ]);
  execveAudited = kernelDisabled == null && all (r: r.syscallRecord && r.execveRecord) results && all (r: r.recorded) pathResults;
  judged = !(any (r: r.uncertain) (results ++ pathResults));
}
