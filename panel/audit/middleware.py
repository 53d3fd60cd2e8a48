"""Bind the audit context around each panel request: interface "panel", the client's address
and user agent, and the route (the resolver's name, "web:container-action"); the request's
pending refusals are written when it is done, also when it raised."""

from django.urls import Resolver404, resolve

from . import context, services


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with context.bound("panel", address=request.META.get("REMOTE_ADDR"),
                           user_agent=request.META.get("HTTP_USER_AGENT", ""),
                           route=_route(request)):
            try:
                return self.get_response(request)
            finally:
                services.flush()


def _route(request) -> str:
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return request.path_info[:200]
