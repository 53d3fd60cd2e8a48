from django.contrib import admin

from .models import AuditEvent, AuditPrune


class ReadOnlyAdmin(admin.ModelAdmin):
    # The audit log is append-only, also for site admins.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "time", "actor_name", "team", "action", "object_repr", "source",
                    "outcome"]
    list_filter = ["action", "source", "outcome"]
    search_fields = ["object_id", "object_repr", "actor_name"]
    list_select_related = ["team"]  # a deleted team's rows show None instead of failing


@admin.register(AuditPrune)
class AuditPruneAdmin(ReadOnlyAdmin):
    list_display = ["upto_seq", "count", "archive", "archive_sha256", "time"]
