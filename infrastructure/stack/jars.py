"""The JVM half of the stack: Kafka libs and Debezium plugins, resolved by Maven into the cache.

`infrastructure/java/pom.xml` is the only place that names the versions. A stamp (the pom's hash)
next to the resolved jars says which pom produced them, so editing the pom triggers a re-resolve,
and the cache then holds exactly the pom's jars (no stale duplicate such as two slf4j-api versions).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import StackError
from core.paths import REPO_ROOT, cache_dir

POM = REPO_ROOT / "infrastructure" / "java" / "pom.xml"
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
# The connectors Connect must offer; their plugin directories must exist after resolving.
REQUIRED_PLUGINS = (
    "debezium-connector-postgres",
    "debezium-connector-mariadb",
    "debezium-connector-jdbc",
)
_STAMP = ".cdchub-pom.sha256"


@dataclass(frozen=True)
class JarPaths:
    """Where the resolved jars are, and which versions they are."""

    kafka_version: str
    debezium_version: str
    kafka_libs: Path
    debezium_plugins: Path

    @property
    def classpath(self) -> str:
        """The `java -cp` value for Kafka and Connect (a JVM wildcard, expanded by java itself)."""
        return f"{self.kafka_libs}/*"


def pom_versions(pom: Path = POM) -> tuple[str, str]:
    """(kafka.version, debezium.version) read from the pom's <properties>."""
    props = ET.parse(pom).getroot().find("m:properties", _NS)
    if props is None:
        raise StackError("pom.xml has no <properties>", component="jars", log=str(pom))
    kafka = props.findtext("m:kafka.version", namespaces=_NS)
    debezium = props.findtext("m:debezium.version", namespaces=_NS)
    if not kafka or not debezium:
        raise StackError(
            "pom.xml lacks kafka.version or debezium.version", component="jars", log=str(pom)
        )
    return kafka.strip(), debezium.strip()


def jar_paths(cache: Path | None = None, pom: Path = POM) -> JarPaths:
    """Where the jars for this pom live in the cache (they may not be resolved yet)."""
    cache = cache or cache_dir()
    kafka, debezium = pom_versions(pom)
    return JarPaths(
        kafka_version=kafka,
        debezium_version=debezium,
        kafka_libs=cache / f"kafka-{kafka}" / "libs",
        debezium_plugins=cache / f"debezium-{debezium}" / "plugins",
    )


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _stamp_file(paths: JarPaths) -> Path:
    return paths.kafka_libs.parent / _STAMP


def jars_ready(paths: JarPaths, pom: Path = POM) -> bool:
    """True if the cache holds the jars of exactly this pom."""
    stamp = _stamp_file(paths)
    return (
        stamp.exists()
        and stamp.read_text().strip() == _pom_hash(pom)
        and any(paths.kafka_libs.glob("kafka_*.jar"))
        and all((paths.debezium_plugins / name).is_dir() for name in REQUIRED_PLUGINS)
    )


def _sync_dir(src: Path, dst: Path) -> None:
    """Make `dst` hold exactly the entries of `src`, moving new ones in; same-named files are kept.

    Same name means same artifact version, so a running JVM's open jars stay untouched.
    """
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        return
    wanted = {p.name for p in src.iterdir()}
    for old in dst.iterdir():
        if old.name not in wanted:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    for new in src.iterdir():
        target = dst / new.name
        if new.is_dir():
            _sync_dir(new, target)
        elif not target.exists():
            os.replace(new, target)


def ensure_jars(
    progress: Callable[[str], None] = print, cache: Path | None = None, pom: Path = POM
) -> JarPaths:
    """Resolve the jars with Maven unless the cache already holds this pom's; return their paths.

    Raises:
        StackError: Maven is missing or failed; the error names the Maven output file.
    """
    cache = cache or cache_dir()
    paths = jar_paths(cache, pom)
    if jars_ready(paths, pom):
        return paths
    mvn = shutil.which("mvn")
    log = cache / "maven.log"
    if mvn is None:
        raise StackError(
            "Maven (mvn) is not installed; it resolves the Kafka/Debezium jars",
            component="jars",
            log=str(log),
        )
    progress("resolving jars from Maven Central…")
    cache.mkdir(parents=True, exist_ok=True)
    # Resolve into a fresh staging dir, then sync: the cache ends up with exactly the pom's jars.
    staging = cache / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with log.open("wb") as out:
            result = subprocess.run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "-f",
                    str(pom),
                    f"-Dmaven.repo.local={cache / 'm2'}",
                    f"-Dcdchub.cache={staging}",
                    # The unpack goal skips artifacts its target/ markers say are done; staging
                    # is new, so force it.
                    "-Dmdep.overWriteReleases=true",
                    "package",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
                cwd=pom.parent,
            )
        if result.returncode != 0:
            raise StackError(
                f"Maven failed with status {result.returncode}", component="jars", log=str(log)
            )
        fresh = jar_paths(staging, pom)
        if not all((fresh.debezium_plugins / name).is_dir() for name in REQUIRED_PLUGINS):
            raise StackError(
                "Maven finished without unpacking the Debezium plugins",
                component="jars",
                log=str(log),
            )
        _sync_dir(fresh.kafka_libs, paths.kafka_libs)
        _sync_dir(fresh.debezium_plugins, paths.debezium_plugins)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _stamp_file(paths).write_text(_pom_hash(pom) + "\n")
    if not jars_ready(paths, pom):
        raise StackError(
            "Maven ran but the expected jars are missing", component="jars", log=str(log)
        )
    return paths
