"""Java services of the local stack: a ``java`` new enough, jars resolved by Maven, and the
start every such launcher shares (:class:`JavaService`).

Each Java service (Kafka, Neo4j, OpenSearch) lists its jars in a pom under
``infra/<service>/``; Maven copies them and their runtime dependencies once into
``<runtime_dir>/cache/<service>-<digest>``, keyed by the pom's content so a changed pom gets a
fresh folder.

>>> " ".join(JavaRun("java", Path("libs")).command("1g", "-Dfile.encoding=UTF-8"))
'java -Xms1g -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true -Dfile.encoding=UTF-8 -cp libs/*'
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from infra.errors import StackError
from infra.stack.processes import ServiceFiles, running_pid
from schemas.settings import Settings

MIN_JAVA = 17


def infra_file(service: str, name: str) -> Path:
    """A file shipped in ``infra/<service>/``, e.g. ``infra_file("neo4j", "pom.xml")``."""
    return Path(str(resources.files("infra").joinpath(service, name)))


def jar_dir(settings: Settings, service: str) -> Path:
    """The cache folder of ``service``'s jars, keyed by the content of its pom."""
    digest = hashlib.sha256(infra_file(service, "pom.xml").read_bytes()).hexdigest()[:12]
    return settings.runtime_dir / "cache" / f"{service}-{digest}" / "libs"


def find_java(service: str, max_version: int | None = None) -> str:
    """Path of a ``java`` between 17 and ``max_version``; StackError naming the problem."""
    java = shutil.which("java")
    if java is None:
        raise StackError(
            f"Java is missing: {service} needs Java {MIN_JAVA} or newer on PATH "
            "(Debian: apt-get install openjdk-17-jre-headless)."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    version = int(match.group(1)) if match else 0
    if version < MIN_JAVA or (max_version is not None and version > max_version):
        wanted = f"{MIN_JAVA}+" if max_version is None else f"{MIN_JAVA} to {max_version}"
        raise StackError(f"{service} needs Java {wanted}, but {java} says: {out.strip()[:200]}")
    return java


def ensure_jars(settings: Settings, service: str, main_jar: str) -> Path:
    """Resolve ``service``'s jars with Maven into the cache (once); return the folder.

    ``main_jar`` is a glob that must match after the copy (e.g. ``kafka_2.13-*.jar``).
    """
    libs = jar_dir(settings, service)
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            f"Maven is missing: the {service} jars are fetched from Maven Central with `mvn` "
            "(Debian: apt-get install maven)."
        )
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(infra_file(service, "pom.xml")),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs.resolve()}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(
            f"Maven could not fetch the {service} jars from Maven Central:\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    if not any(libs.glob(main_jar)):
        raise StackError(f"Maven ran but no {main_jar} landed in {libs}")
    marker.touch()
    return libs


@dataclass(frozen=True, slots=True)
class JavaRun:
    """The ``java`` a service runs on and the folder of its jars."""

    java: str
    libs: Path

    @property
    def classpath(self) -> str:
        return f"{self.libs}/*"

    def command(self, heap: str, *options: str) -> list[str]:
        """``java`` with a fixed heap, G1, no display, ``options`` and the jars on the class
        path; the main class (or launcher source file) and its arguments follow."""
        return [
            self.java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            *options,
            "-cp",
            self.classpath,
        ]


@dataclass(frozen=True, slots=True)
class JavaService:
    """One Java service of the local stack: ``name`` is its folder under ``infra/`` and the
    name of its runtime files, ``title`` how messages call it, ``main_jar`` a glob its resolved
    jars must match, ``max_java`` the newest Java it runs on (None: any from 17)."""

    name: str
    title: str
    main_jar: str
    max_java: int | None = None

    def files(self, settings: Settings) -> ServiceFiles:
        return ServiceFiles(settings.runtime_dir, self.name)

    def infra_file(self, name: str) -> Path:
        return infra_file(self.name, name)

    def find_java(self) -> str:
        """Path of a ``java`` it runs on; StackError naming the problem otherwise."""
        return find_java(self.title, self.max_java)

    def ensure_jars(self, settings: Settings) -> Path:
        """Resolve its jars with Maven into the cache (once); return the folder."""
        return ensure_jars(settings, self.name, self.main_jar)

    def start(self, settings: Settings, launch: Callable[[ServiceFiles, JavaRun], int]) -> int:
        """Start the service unless it already runs; return its pid. ``launch`` spawns it,
        once Java and the jars are found and its folders are prepared."""
        svc = self.files(settings)
        pid = running_pid(svc)
        if pid is not None:
            return pid
        run = JavaRun(self.find_java(), self.ensure_jars(settings).resolve())
        svc.prepare()
        return launch(svc, run)
