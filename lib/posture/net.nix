# Addresses and patterns as the daemons read them: IPv4/IPv6 parsing, CIDR containment, and
# OpenSSH's pattern lists (match.c `match_pattern_list`, addrmatch.c `addr_match_list`).
{ lib }:
let
  inherit (lib) splitString toInt all any length elemAt filter;

  pow2 = n: lib.foldl' (acc: _: acc * 2) 1 (lib.range 1 n);

  digitsOk = re: s: builtins.match re s != null;

  hexDigit = c: {
    "0" = 0; "1" = 1; "2" = 2; "3" = 3; "4" = 4; "5" = 5; "6" = 6; "7" = 7; "8" = 8; "9" = 9;
    a = 10; b = 11; c = 12; d = 13; e = 14; f = 15;
  }.${lib.toLower c};
  fromHex = s: lib.foldl' (acc: c: acc * 16 + hexDigit c) 0 (lib.stringToCharacters s);
in
rec {
  # "10.0.0.1" → [ 10 0 0 1 ], or null.
  parseIPv4 =
    s:
    let parts = splitString "." s; in
    if length parts != 4 || !all (digitsOk "[0-9]{1,3}") parts then null
    else let n = map toInt parts; in if all (x: x <= 255) n then n else null;

  # "fd00::1" → eight 16-bit groups, or null. An embedded IPv4 tail is not supported (null).
  parseIPv6 =
    s:
    let
      halves = splitString "::" s;
      groups = h: if h == "" then [ ] else splitString ":" h;
      ok = gs: all (digitsOk "[0-9a-fA-F]{1,4}") gs;
      parsed =
        if length halves == 1 then (let g = groups s; in if length g == 8 && ok g then g else null)
        else if length halves == 2 then
          let
            l = groups (elemAt halves 0);
            r = groups (elemAt halves 1);
            fill = 8 - length l - length r;
          in
          if fill < 1 || !ok l || !ok r then null else l ++ lib.genList (_: "0") fill ++ r
        else null;
    in
    if !(lib.hasInfix ":" s) || parsed == null then null else map fromHex parsed;

  # { family = 4|6; groups; bits = 8|16; } or null.
  parseIP =
    s:
    let v4 = parseIPv4 s; v6 = parseIPv6 s; in
    if v4 != null then { family = 4; groups = v4; bits = 8; }
    else if v6 != null then { family = 6; groups = v6; bits = 16; }
    else null;

  # Whether the first `len` bits of two parsed addresses of one family agree.
  prefixEqual =
    a: b: len:
    let
      full = len / a.bits;
      rest = len - full * a.bits;
      shift = pow2 (a.bits - rest);
    in
    lib.take full a.groups == lib.take full b.groups
    && (rest == 0 || (elemAt a.groups full) / shift == (elemAt b.groups full) / shift);

  # "10.0.0.0/8" or "10.1.2.3" → { ip; len; } or null.
  parseCidr =
    s:
    let
      parts = splitString "/" s;
      ip = parseIP (elemAt parts 0);
      max = if ip == null then 0 else ip.bits * length ip.groups;
      len = if length parts == 2 && digitsOk "[0-9]{1,3}" (elemAt parts 1) then toInt (elemAt parts 1) else if length parts == 1 then max else null;
    in
    if ip == null || len == null || len > max then null else { inherit ip len; };

  # Whether `addr` (a string) lies in `cidr` (a string); false for unparsable input.
  inCidr =
    cidr: addr:
    let c = parseCidr cidr; a = parseIP addr; in
    c != null && a != null && c.ip.family == a.family && prefixEqual c.ip a c.len;

  # A glob (`*`, `?`) as a builtins.match regex, anchored.
  globRegex = p: builtins.replaceStrings [ "\\*" "\\?" ] [ ".*" "." ] (lib.escapeRegex p);
  globMatch = pattern: s: builtins.match (globRegex pattern) s != null;

  # OpenSSH match_pattern_list: 1 when a positive pattern matches and no negated one does,
  # -1 when a negated pattern (`!p`) matches, 0 otherwise. `lower`: compare lower-cased.
  patternList =
    { lower ? false }:
    list: s:
    let
      norm = if lower then lib.toLower else (x: x);
      pats = filter (p: p != "") (splitString "," list);
      neg = p: lib.hasPrefix "!" p;
      hit = p: globMatch (norm (lib.removePrefix "!" p)) (norm s);
    in
    if any (p: neg p && hit p) pats then -1
    else if any (p: !(neg p) && hit p) pats then 1
    else 0;

  # OpenSSH addr_match_list: entries are CIDR blocks or wildcard patterns, `!` negates.
  addrList =
    list: addr:
    let
      pats = filter (p: p != "") (splitString "," list);
      neg = p: lib.hasPrefix "!" p;
      body = p: lib.removePrefix "!" p;
      hit = p: if parseCidr (body p) != null then inCidr (body p) addr else globMatch (body p) addr;
    in
    if any (p: neg p && hit p) pats then -1
    else if any (p: !(neg p) && hit p) pats then 1
    else 0;

  # An address inside a pattern, to stand for the connections it names: the network's
  # second address for a CIDR block (its first host), wildcards filled in, or null.
  witness =
    pattern:
    let
      p = lib.removePrefix "!" pattern;
      c = parseCidr p;
    in
    if lib.hasPrefix "!" pattern then null
    else if c != null && c.ip.family == 4 then
      let
        hostBits = 32 - c.len;
        base = lib.foldl' (acc: g: acc * 256 + g) 0 c.ip.groups;
        size = pow2 hostBits;
        net = base / size * size;
        n = if hostBits == 0 then net else net + 1;
        octet = i: toString (lib.mod (n / pow2 (8 * (3 - i))) 256);
      in
      lib.concatMapStringsSep "." octet [ 0 1 2 3 ]
    else if c != null then p
    else if lib.hasInfix "*" p || lib.hasInfix "?" p then
      # Wildcards filled with 1, IPv4 padded to four octets: 10.1.* → 10.1.1.1.
      let
        fill = builtins.replaceStrings [ "*" "?" ] [ "1" "1" ];
        octets = map fill (splitString "." p);
        v4 = lib.concatStringsSep "." (octets ++ lib.genList (_: "1") (4 - length octets));
        candidate = if !(lib.hasInfix ":" p) && length octets <= 4 then v4 else fill p;
      in
      if parseIP candidate != null then candidate else null
    else null;
}
