from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["created", "kind", "target_repr", "state", "node", "actor", "finished"]
    list_filter = ["state", "kind", "node"]
    readonly_fields = [f.name for f in Job._meta.fields]
