from django.db import models


class Container(models.Model):
    class State(models.TextChoices):
        CREATED = "created"
        RUNNING = "running"
        PAUSED = "paused"
        RESTARTING = "restarting"
        EXITED = "exited"
        DEAD = "dead"
        REMOVING = "removing"

    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=128, unique=True)
    team = models.ForeignKey("teams.Team", on_delete=models.PROTECT, related_name="containers")
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="containers")
    image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="containers")
    image_ref = models.CharField(max_length=255)  # what the user asked for, e.g. busybox:1.29
    entrypoint = models.JSONField(null=True, blank=True)
    cmd = models.JSONField(null=True, blank=True)
    env = models.JSONField(default=list, blank=True)
    working_dir = models.CharField(max_length=255, blank=True)
    user = models.CharField(max_length=64, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    spec = models.JSONField(default=dict)  # the full Docker Config + HostConfig as requested
    state = models.CharField(max_length=16, choices=State.choices, default=State.CREATED, db_index=True)
    pid = models.IntegerField(default=0)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    restart_count = models.IntegerField(default=0)
    oom_killed = models.BooleanField(default=False)  # the OOM killer struck in the last run
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["team", "-created"])]

    def __str__(self):
        return self.name

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def is_running(self) -> bool:
        return self.state in (self.State.RUNNING, self.State.PAUSED, self.State.RESTARTING)

    @property
    def host_config(self) -> dict:
        return self.spec.get("HostConfig") or {}


class ExecInstance(models.Model):
    """A `docker exec` instance: created by `POST /containers/{id}/exec`, run once by
    `POST /exec/{id}/start` in the container's namespaces (see panel/containers/execs.py)."""

    id = models.CharField(primary_key=True, max_length=64)
    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="execs")
    config = models.JSONField(default=dict)  # the normalized ExecConfig
    running = models.BooleanField(default=False)
    exit_code = models.IntegerField(null=True, blank=True)
    pid = models.IntegerField(default=0)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"exec {self.id[:12]} in {self.container_id[:12]}"


class ContainerEvent(models.Model):
    """One entry of a container's history, in Docker's event vocabulary (create, start, die,
    kill, stop, pause, unpause, restart, rename, destroy, ...). Kept after the container is
    removed (no foreign key to it): `docker events --since` replays these rows."""

    container_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=128)  # the container's name at the time
    image = models.CharField(max_length=255, blank=True)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    action = models.CharField(max_length=32)
    state = models.CharField(max_length=16, blank=True)  # the container's state after it
    exit_code = models.IntegerField(null=True, blank=True)
    actor = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    attributes = models.JSONField(default=dict, blank=True)  # labels, signal, oldName, ...
    time = models.DateTimeField()
    time_nano = models.BigIntegerField(db_index=True)
    key = models.CharField(max_length=64)  # what makes a recorded transition unique

    class Meta:
        ordering = ["time_nano", "id"]
        constraints = [
            models.UniqueConstraint(fields=["container_id", "action", "key"],
                                    name="container_event_once"),
        ]

    def __str__(self):
        return f"{self.action} {self.container_id[:12]}"
