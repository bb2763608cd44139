{
  description = "Starbox: an astronomy science platform in one box";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # PostgreSQL 15 with both spatial extensions; Starbox finds it through pg_config on PATH.
      postgres = pkgs: pkgs.postgresql_15.withPackages (ps: [ ps.q3c ps.pgsphere ]);
      # Node.js builds the Voilà app page at install time (appliance/voila-page).
      runtime = pkgs: [ pkgs.python311 (postgres pkgs) pkgs.nodejs_20 pkgs.gnumake pkgs.acl pkgs.bash pkgs.coreutils ];
    in {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell { packages = runtime pkgs; };
      });

      # `nix run`: the same install and build steps as `make up` (appliance/install.sh), minus
      # apt-get, whose packages Nix provides above.
      apps = forAll (pkgs:
        let
          up = pkgs.writeShellApplication {
            name = "starbox-up";
            runtimeInputs = runtime pkgs;
            text = ''
              ./appliance/install.sh --no-apt
              exec .venv/bin/starbox up "$@"
            '';
          };
        in { default = { type = "app"; program = "${up}/bin/starbox-up"; }; });
    };
}
