"""Parts of the run form that belong to one concern (storage, resources, security), each in
its own module: a ``RunSection`` declares its fields and checks, and ``apply`` adds what
they ask for to the Docker create request. ``RunForm`` inherits every section."""

from django import forms


class RunSection(forms.Form):
    """Subclass with fields, ``clean_<field>`` methods and these attributes."""

    section_id = ""  # the <details> element's id, e.g. "storage-settings"
    section_title = ""
    section_summary = ""  # what the section holds, in a few words
    # (words in a services' error message, the field it belongs to), e.g. ("memory", "memory")
    error_fields: tuple[tuple[str, str], ...] = ()

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        """Add the cleaned ``data`` of this section's fields to the request."""

    @classmethod
    def own_field_names(cls) -> list[str]:
        return list(cls.declared_fields)


def section_classes(form_class) -> list[type[RunSection]]:
    """The sections a form inherits, in the order they are listed as its bases."""
    return [c for c in form_class.__mro__
            if issubclass(c, RunSection) and c.__dict__.get("section_id")]
