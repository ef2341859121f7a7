# Time zone and locales: time.* (config/locale.nix) and i18n.* (config/i18n.nix).
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types mkIf;
  cfg = config.i18n;
  nospace = str: lib.filter (c: c == " ") (lib.stringToCharacters str) == [ ];
  sanitizeUTF8Capitalization = lang: lib.replaceStrings [ "utf8" "utf-8" "UTF8" ] [ "UTF-8" "UTF-8" "UTF-8" ] lang;
  aggregatedLocales =
    lib.optionals (cfg.defaultLocale != "C") [ "${cfg.defaultLocale}/${cfg.defaultCharset}" ]
    ++ lib.pipe cfg.extraLocaleSettings [
      (x: lib.removeAttrs x [ "LANGUAGE" ])
      (lib.mapAttrs (_: sanitizeUTF8Capitalization))
      (lib.filterAttrs (_: v: v != "C"))
      (lib.mapAttrsToList (role: lang: lang + "/" + (cfg.localeCharsets.${role} or "UTF-8")))
    ]
    ++ map sanitizeUTF8Capitalization (lib.optionals (builtins.isList cfg.extraLocales) cfg.extraLocales)
    ++ lib.optional (builtins.isString cfg.extraLocales) cfg.extraLocales;
  provenance = upstream: options: { inherit upstream options; repo = "Swarsel/nixpkgs"; commit = "4aa6836a648ca76c68866decf0c8965e36ec2a3b"; surface = "locale.nix"; };
in
{
  options = {
    time = {
      timeZone = mkOption { type = types.nullOr (types.addCheck types.str nospace) // { description = "null or string without spaces"; }; default = null; example = "America/New_York"; description = "The time zone (null: UTC, settable with timedatectl)."; };
      hardwareClockInLocalTime = mkOption { type = types.bool; default = false; description = "Keep the hardware clock in local time instead of UTC."; };
    };
    location = {
      latitude = mkOption { type = types.float; description = "Current latitude."; };
      longitude = mkOption { type = types.float; description = "Current longitude."; };
      provider = mkOption { type = types.enum [ "manual" "geoclue2" ]; default = "manual"; description = "The location provider."; };
    };
    i18n = {
      defaultCharset = mkOption { type = types.str; default = "UTF-8"; description = "The default locale character set."; };
      defaultLocale = mkOption { type = types.str; default = "en_US.UTF-8"; description = "The default locale (LANG)."; };
      extraLocaleSettings = mkOption { type = types.attrsOf types.str; default = { }; description = "Other locale variables (LC_*)."; };
      extraLocales = mkOption { type = types.either (types.listOf types.str) (types.enum [ "all" ]); default = [ ]; description = "More locales to install (\"all\" for every one)."; };
      glibcLocales = mkOption { type = types.nullOr types.path; default = pkgs.glibcLocales; defaultText = lib.literalExpression "pkgs.glibcLocales (with the supported locales)"; description = "The locale archive package."; };
      imperativeLocale = mkOption { type = types.bool; default = false; description = "Manage locale and keymap with localectl at run time."; };
      localeCharsets = mkOption { type = types.attrsOf types.str; default = { }; description = "Character set of each extraLocaleSettings entry."; };
      supportedLocales = mkOption { type = types.listOf types.str; default = lib.unique ([ "C.UTF-8/UTF-8" "en_US.UTF-8/UTF-8" ] ++ aggregatedLocales); visible = false; description = "Locales the system supports."; };
    };
  };

  config = {
    surface.provenance = [
      (provenance "nixos/modules/config/locale.nix" [ "time" "location" ])
      (provenance "nixos/modules/config/i18n.nix" [ "i18n" ])
    ];
    environment.etc = {
      zoneinfo.source = "${pkgs.tzdata}/share/zoneinfo";
    } // lib.optionalAttrs (config.time.timeZone != null) {
      localtime = { mode = "direct-symlink"; source = "/etc/zoneinfo/${config.time.timeZone}"; };
    } // lib.optionalAttrs config.time.hardwareClockInLocalTime {
      adjtime.text = ''
        0.0 0 0
        0
        LOCAL
      '';
    } // lib.optionalAttrs (!cfg.imperativeLocale) {
      "locale.conf".text = ''
        LANG=${cfg.defaultLocale}
        ${lib.concatStringsSep "\n" (lib.mapAttrsToList (n: v: "${n}=${v}") cfg.extraLocaleSettings)}
      '';
    };
    warnings = lib.optional (!((lib.subtractLists cfg.supportedLocales aggregatedLocales) == [ ] || lib.elem "all" cfg.supportedLocales)) ''
      `i18n.supportedLocales` is deprecated in favor of `i18n.extraLocales`,
      and it seems you are using `i18n.supportedLocales` and forgot to
      include some locales specified in `i18n.defaultLocale`,
      `i18n.extraLocales` or `i18n.extraLocaleSettings`.
    '';
  };
}
