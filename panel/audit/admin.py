from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["time", "actor_name", "team", "action", "object_repr", "source"]
    list_filter = ["action", "source"]
    search_fields = ["object_id", "object_repr", "actor_name"]

    # The audit log is append-only, also for site admins.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
