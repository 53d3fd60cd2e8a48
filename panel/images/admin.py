from django.contrib import admin

from .models import Image, ImageTag


class ImageTagInline(admin.TabularInline):
    model = ImageTag
    extra = 0


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["short_id", "__str__", "node", "team", "size", "created"]
    inlines = [ImageTagInline]
