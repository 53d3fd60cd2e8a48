from django.db import models


class Image(models.Model):
    """An image in a node's store. id is the sha256 of its config (Docker's image Id)."""

    id = models.CharField(primary_key=True, max_length=64)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="images")
    # Other teams that pulled, loaded or built the same content: the id is the content, so
    # there is one row, which they see and use as their own.
    shared_with = models.ManyToManyField("teams.Team", blank=True, related_name="shared_images")
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="images")
    config = models.JSONField()  # the OCI image config (architecture, os, config, rootfs, history)
    layers = models.JSONField(default=list)  # diff ids ("sha256:..."), bottom to top
    parent = models.CharField(max_length=64, blank=True)
    # "localhost:5000/app@sha256:...": the manifests this image was pulled as or pushed to.
    repo_digests = models.JSONField(default=list, blank=True)
    size = models.BigIntegerField(default=0)
    created = models.DateTimeField()

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        tags = [str(t) for t in self.tags.all()]
        return ", ".join(tags) or self.short_id

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def docker_id(self) -> str:
        return f"sha256:{self.id}"

    @property
    def run_config(self) -> dict:
        return self.config.get("config") or {}

    @property
    def labels(self) -> dict:
        return self.run_config.get("Labels") or {}


class ImageTag(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="tags")
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "tag"], name="unique_repo_tag")]
        ordering = ["repository", "tag"]

    def __str__(self):
        return f"{self.repository}:{self.tag}"


class RegistryCredential(models.Model):
    """A team's login to a registry (`docker login`); the password only as a Fernet token."""

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE,
                             related_name="registry_credentials")
    registry = models.CharField(max_length=255)  # "localhost:5000", "docker.io"
    username = models.CharField(max_length=255)
    secret = models.TextField()  # credentials.seal({"password": ...})
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "registry"],
                                               name="unique_team_registry")]
        ordering = ["registry"]

    def __str__(self):
        return f"{self.username}@{self.registry}"
