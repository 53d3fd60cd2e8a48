"""`user|may_audit`: whether the nav shows the Audit link (the page is a 404 otherwise)."""

from django import template

from panel.audit import queries

register = template.Library()


@register.filter
def may_audit(user) -> bool:
    return queries.may_audit(user)
