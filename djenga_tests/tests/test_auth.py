"""Tokens and the one authorisation function shared by the consumer and the JSON view."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User

from djenga.live.auth import Viewer, authorise, make_token


def test_token_for_the_task_lets_anyone_with_it_watch():
    assert authorise(AnonymousUser(), make_token("t1"), "t1") == Viewer(staff=False)
    assert authorise(AnonymousUser(), make_token("t1"), "t2") is None
    assert authorise(AnonymousUser(), None, "t1") is None


@pytest.mark.django_db
def test_a_token_made_for_a_user_is_only_theirs():
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    token = make_token("t1", alice)
    assert authorise(alice, token, "t1") == Viewer(staff=False)
    assert authorise(bob, token, "t1") is None
    assert authorise(AnonymousUser(), token, "t1") is None


@pytest.mark.django_db
def test_staff_watch_anything_and_see_everything():
    staff = User.objects.create_user("sam", is_staff=True)
    assert authorise(staff, None, "any-task") == Viewer(staff=True)
    staff.is_active = False
    assert authorise(staff, None, "any-task") is None
