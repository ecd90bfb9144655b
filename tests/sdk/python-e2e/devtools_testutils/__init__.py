"""Stand-in for the Azure SDK test-infrastructure package ``devtools_testutils``.

The real package (azure-sdk-tools) is not published on PyPI. The ACS suites only need its
*live* behaviour: with ``AZURE_TEST_RUN_LIVE=true`` and ``AZURE_SKIP_LIVE_RECORDING=true`` the
real decorators call the test directly and the ``test_proxy`` fixture starts nothing. This
package provides exactly that surface, written from its documented behaviour:

* ``recorded_by_proxy`` / ``aio.recorded_by_proxy_async``: call the test (no proxy, no
  recording); outside live mode the test is skipped, because playback needs the test proxy and
  recordings that the sdists do not ship;
* sanitizers and matchers: accepted and ignored (they only configure the proxy);
* ``AzureRecordedTestCase``, ``is_live``, ``PowerShellPreparer`` / ``EnvironmentVariableLoader``;
* ``fake_credentials`` / ``fake_credentials_async``: credentials for playback-only code paths;
* the ``test_proxy`` fixture (session scope, yields nothing) and, as a pytest plugin
  (``-p devtools_testutils``), a local stand-in for a Microsoft Entra token source (see
  ``entra.py``) so that ``DefaultAzureCredential`` can run offline.
"""

import functools
import inspect
import os
import uuid

import pytest

__all__ = [
    "AzureRecordedTestCase",
    "EnvironmentVariableLoader",
    "PowerShellPreparer",
    "is_live",
    "is_live_and_not_recording",
    "recorded_by_proxy",
    "test_proxy",
    "entra_token_source",
]

_TRUE = ("true", "yes", "1", "on")


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in _TRUE


def is_live():
    """True when the tests talk to a live service (``AZURE_TEST_RUN_LIVE``)."""
    return _env_flag("AZURE_TEST_RUN_LIVE")


def is_live_and_not_recording():
    """True when live and recording is switched off (``AZURE_SKIP_LIVE_RECORDING``)."""
    return is_live() and _env_flag("AZURE_SKIP_LIVE_RECORDING")


def _skip_unless_live():
    if not is_live():
        pytest.skip(
            "playback needs the Azure SDK test proxy and recordings, which this stand-in does "
            "not provide; set AZURE_TEST_RUN_LIVE=true"
        )


def _call_args(test_func, kwargs):
    """Passes ``variables`` (the recorder's variable store) only to tests that take it."""
    params = inspect.signature(test_func).parameters
    if "variables" in params and "variables" not in kwargs:
        kwargs = dict(kwargs, variables={})
    return kwargs


def recorded_by_proxy(test_func):
    """Live-only passthrough: runs the test as it is, returns what it returns."""

    @functools.wraps(test_func)
    def run_live(*args, **kwargs):
        _skip_unless_live()
        return test_func(*args, **_call_args(test_func, kwargs))

    return run_live


# --- sanitizers and matchers: they only configure the test proxy, which is not used -------------


def _proxy_setting(name):
    def accept_and_ignore(*_args, **_kwargs):
        return None

    accept_and_ignore.__name__ = name
    accept_and_ignore.__doc__ = "Test-proxy setting; ignored (no proxy in live mode)."
    return accept_and_ignore


_PROXY_SETTINGS = [
    "add_api_version_transform",
    "add_batch_sanitizers",
    "add_body_key_sanitizer",
    "add_body_regex_sanitizer",
    "add_body_string_sanitizer",
    "add_continuation_sanitizer",
    "add_general_regex_sanitizer",
    "add_general_string_sanitizer",
    "add_header_regex_sanitizer",
    "add_header_string_sanitizer",
    "add_oauth_response_sanitizer",
    "add_remove_header_sanitizer",
    "add_storage_request_id_transform",
    "add_uri_regex_sanitizer",
    "add_uri_string_sanitizer",
    "remove_batch_sanitizers",
    "set_bodiless_matcher",
    "set_custom_default_matcher",
    "set_default_function_settings",
    "set_default_session_settings",
    "set_function_recording_options",
    "set_headerless_matcher",
    "set_session_recording_options",
]
for _name in _PROXY_SETTINGS:
    globals()[_name] = _proxy_setting(_name)
__all__ += _PROXY_SETTINGS


# --- environment-driven test parameters --------------------------------------------------------


class EnvironmentVariableLoader:
    """Decorator that passes settings to a test as keyword arguments.

    ``EnvironmentVariableLoader("communication", communication_livetest_dynamic_connection_string="fake")``
    gives the test ``communication_livetest_dynamic_connection_string=<env var of that name,
    upper-cased>`` when live, and the given fake value otherwise.
    """

    def __init__(self, directory, **fake_values):
        self.directory = directory
        self.fake_values = fake_values

    def _values(self):
        values = {}
        for key, fake in self.fake_values.items():
            if is_live():
                real = os.environ.get(key.upper())
                if real is None:
                    pytest.fail(f"live test needs the environment variable {key.upper()}")
                values[key] = real
            else:
                values[key] = fake
        return values

    def __call__(self, test_func):
        if inspect.iscoroutinefunction(test_func):

            @functools.wraps(test_func)
            async def run_async(*args, **kwargs):
                return await test_func(*args, **dict(self._values(), **kwargs))

            return run_async

        @functools.wraps(test_func)
        def run(*args, **kwargs):
            return test_func(*args, **dict(self._values(), **kwargs))

        return run


PowerShellPreparer = EnvironmentVariableLoader


# --- base class --------------------------------------------------------------------------------


class AzureRecordedTestCase:
    """Base class of the recorded tests; only the live-mode helpers are meaningful here."""

    @property
    def is_live(self):
        return is_live()

    def is_playback(self):
        return not is_live()

    @property
    def in_recording(self):
        return False

    def get_settings_value(self, key):
        name = key.upper()
        if not name.startswith("AZURE_"):
            name = "AZURE_" + name
        value = os.environ.get(name)
        if value is None:
            pytest.fail(f"setting {key} is not in the environment ({name})")
        return value

    def get_credential(self, client_class, **kwargs):
        is_async = kwargs.pop("is_async", False)
        if not is_live():
            from .fake_credentials import FakeTokenCredential
            from .fake_credentials_async import AsyncFakeCredential

            return AsyncFakeCredential() if is_async else FakeTokenCredential()
        if is_async:
            from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential

            return AsyncDefaultAzureCredential()
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

    def create_client_from_credential(self, client_class, credential, **kwargs):
        return client_class(credential=credential, **kwargs)

    def create_random_name(self, name):
        return f"{name}{uuid.uuid4().hex[:12]}"

    def get_resource_name(self, name):
        return self.create_random_name(name)


# --- fixtures (this package is also a pytest plugin: ``-p devtools_testutils``) ---------------


@pytest.fixture(scope="session")
def test_proxy():
    """The real fixture starts the test proxy unless live-and-not-recording; nothing to do here."""
    yield


from .entra import entra_token_source  # noqa: E402  (fixture, registered by the plugin)
