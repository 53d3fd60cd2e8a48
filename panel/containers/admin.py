from django.contrib import admin

from .models import Container


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ["name", "short_id", "image_ref", "state", "exit_code", "team", "node", "created"]
    list_filter = ["state", "node", "team"]
    search_fields = ["id", "name", "image_ref"]
