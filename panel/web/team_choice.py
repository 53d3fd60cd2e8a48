"""The team a new container, volume or network goes to, as the panel's forms offer it."""


def offer_teams(form, teams, default_team=None) -> dict:
    """Set up ``form``'s ``team`` field for the user's ``teams``: a required choice when there
    are several, no field when there is one (the services pick the user's only team).
    Returns {str(pk): team} for the form's ``run``/``save`` to look the choice up."""
    by_pk = {str(team.pk): team for team in teams}
    if len(by_pk) < 2:
        del form.fields["team"]
    else:
        form.fields["team"].choices = [(pk, team.name) for pk, team in by_pk.items()]
        form.fields["team"].required = True
        if default_team is not None:
            form.fields["team"].initial = str(default_team.pk)
    return by_pk
