"""Forms of the team and token pages (validation of shape only; rules live in services)."""

from django import forms

from apps.accounts.models import Role


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100)
    slug = forms.SlugField(max_length=50, required=False, help_text="Optional; made from the name if blank.")


class TeamRenameForm(forms.Form):
    name = forms.CharField(max_length=100)


class MemberAddForm(forms.Form):
    user = forms.CharField(max_length=254, label="Username or email")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'CI pipeline'.")
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False, help_text="Blank: the token does not expire."
    )
