"""Generator `openai`: one request per variation, `concurrency` requests in flight.

Retries, backoff and `Retry-After` are the official client's own (`max_retries`). What
happens after them:
- a 400 (content policy, or an image the server will not take) rejects that task; its
  reason goes to rejected.csv and `--resume` tries it again;
- 429 / 5xx / dropped connections that outlast the retries reject that task the same way;
- a rejected API key, an exhausted quota, a 404 (wrong base URL or model) or a base URL
  that cannot be reached at all stop the run at once with a one-line message.
The API key is read from the environment by the client and is scrubbed from every
message this module produces (servers echo keys back in error bodies).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import os
import re
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np

from synthmed.errors import SynthmedError, UsageError
from synthmed.protocols import VariationTask
from synthmed_openai import images

log = logging.getLogger("synthmed.openai")

API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MODES = ("variation", "edit")
DEFAULT_MODELS = {"variation": "dall-e-2", "edit": "gpt-image-2"}
DEFAULT_PROMPT = (
    "Create a realistic variation of this medical image: the same imaging modality, view, "
    "anatomy and contrast, with the natural differences of another patient. Keep the black "
    "background. No text, labels, arrows or annotations."
)
# 400 error codes that mean "this image (or prompt) was refused", not "this request is malformed".
POLICY_CODES = {"content_policy_violation", "moderation_blocked", "image_generation_user_error"}


class Rejected(Exception):
    """A task the API refused for good in this run (its reason is already scrubbed)."""


def _argument_error(name: str, value: object, expected: str) -> UsageError:
    return UsageError(f"-g {name}={value}: {expected}")


class OpenAIImageGenerator:
    """Variations of source images through `images.edit` or `images.create_variation`."""

    name = "openai"

    def __init__(
        self,
        mode: str = "edit",
        model: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        base_url: str | None = None,
        size: int | str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
    ) -> None:
        from synthmed_openai import __version__

        self.version = __version__
        if importlib.util.find_spec("openai") is None:
            raise UsageError("generator openai needs the `openai` package: pip install ./plugins/synthmed-openai")
        if mode not in MODES:
            raise _argument_error("mode", mode, "expected variation or edit")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise _argument_error("timeout", timeout, "expected a number of seconds above 0")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise _argument_error("max_retries", max_retries, "expected a whole number, 0 or more")
        if mode == "edit" and not str(prompt).strip():
            raise _argument_error("prompt", prompt, "mode edit needs a non-empty prompt")
        self.mode = mode
        self.model = str(model or DEFAULT_MODELS[mode])
        self.prompt = str(prompt)
        self.size = images.parse_size(size, mode)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.base_url = str(base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _argument_error("base_url", self.base_url, "expected an http(s) URL such as https://api.openai.com/v1")
        # The host that receives patient images; `generate` refuses it without --allow-upload.
        self.upload_host = parts.hostname + (f":{parts.port}" if parts.port else "")
        self._openai = None
        self._reached = False
        self._api_key = os.environ.get(API_KEY_ENV, "").strip()
        if not self._api_key:
            raise UsageError(f"{API_KEY_ENV} is not set; export your API key for {self.upload_host} in the environment")

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIImageGenerator(mode={self.mode!r}, model={self.model!r}, base_url={self.base_url!r})"

    def columns(self) -> dict[str, str]:
        return {"mode": self.mode, "model": self.model, "prompt": self.prompt if self.mode == "edit" else ""}

    # ---- the protocol

    def vary(self, tasks: Sequence[VariationTask], *, device: Any = None, concurrency: int = 1
             ) -> Iterator[tuple[VariationTask, np.ndarray | Exception]]:
        # `concurrency` >= 1: synthmed checks it (synthmed.generate.variation.check_limits) before calling.
        for task in tasks:  # refuse unusable sources before anything is uploaded
            images.check_source(task.pixels, self.mode, task.source_id)
        client = self._client()
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="synthmed-openai")
        pending: dict[Future, VariationTask] = {pool.submit(self._vary_one, client, task): task for task in tasks}
        try:
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = pending.pop(future)
                        # Has the server answered anything yet? Tells "unreachable" from "flaky".
                        self._reached = self._reached or not _is_connection_error(future.exception())
                        try:
                            outcome = self._outcome(task, future, self._reached)
                        except SynthmedError:
                            yield from _finish_in_flight(pool, pending)  # paid for: keep them
                            raise
                        yield task, outcome
            except KeyboardInterrupt:
                # Requests in flight are being paid for: finish them and hand their images over,
                # so that `--resume` never asks for them again. A second Ctrl-C abandons them.
                log.warning("interrupted: finishing the requests in flight (Ctrl-C again to abandon them)")
                yield from _finish_in_flight(pool, pending)
                raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    # ---- one request

    def _client(self):
        """One client for all calls (it is thread-safe and keeps connections alive)."""
        if self._openai is None:
            import openai

            self._openai = openai.OpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                         max_retries=self.max_retries)
        return self._openai

    def _vary_one(self, client: Any, task: VariationTask) -> np.ndarray:
        side = images.request_side(task.pixels.shape, self.mode, self.size)
        prepared = images.prepare(task.pixels, side)
        upload = ("source.png", prepared.png, "image/png")
        # A stable key per task: a provider that honours it does not bill a repeated request
        # twice; it reveals nothing about the image or its id.
        headers = {"Idempotency-Key": request_key(task)}
        if self.mode == "variation":
            with warnings.catch_warnings():  # the SDK marks the endpoint deprecated; compatible servers keep it
                warnings.simplefilter("ignore", DeprecationWarning)
                response = client.images.create_variation(
                    image=upload, model=self.model, n=1, size=f"{side}x{side}", response_format="b64_json",
                    extra_headers=headers,
                )
        else:
            # GPT image models always answer in base64 and take no response_format.
            response = client.images.edit(
                image=upload, prompt=self.prompt.replace("{label}", task.label), model=self.model, n=1,
                size=f"{side}x{side}", extra_headers=headers,
            )
        if not response.data:
            raise Rejected("the server answered without an image")
        answer = response.data[0]
        if answer.b64_json:
            data = base64.b64decode(answer.b64_json)
        elif answer.url:
            data = _download(answer.url, self.timeout)
        else:
            raise Rejected("the server answered without image data")
        return images.restore(data, prepared)

    def _outcome(self, task: VariationTask, future: Future, reached: bool) -> np.ndarray | Exception:
        """The image, a Rejected for this task, or raise to stop the run."""
        import openai

        error = future.exception()
        if error is None:
            return future.result()
        if isinstance(error, (Rejected, SynthmedError)):
            if isinstance(error, UsageError):
                raise error
            return Rejected(self._scrub(str(error)))
        if isinstance(error, openai.AuthenticationError):
            raise UsageError(f"{self.upload_host} refused the API key in {API_KEY_ENV} (HTTP {error.status_code}); "
                             "check the key and that it may use the images API")
        if isinstance(error, openai.PermissionDeniedError):
            raise UsageError(f"{self.upload_host} denied access to the images API with this key "
                             f"(HTTP 403: {self._message(error)})")
        if isinstance(error, openai.NotFoundError):
            raise UsageError(f"{self.base_url} answered 404 for the images {self.mode} endpoint: check -g base_url "
                             f"and -g model={self.model} ({self._message(error)})")
        if isinstance(error, openai.RateLimitError) and _code(error) == "insufficient_quota":
            raise SynthmedError(f"{self.upload_host}: the account's quota is exhausted ({self._message(error)}); "
                                "rerun with --resume once it is raised")
        if isinstance(error, openai.APIStatusError):
            return Rejected(f"HTTP {error.status_code} {_code(error) or ''}: {self._message(error)}".replace("  ", " "))
        if isinstance(error, openai.APIConnectionError):
            if not reached:
                raise UsageError(f"cannot reach {self.base_url} ({self._scrub(str(error.__cause__ or error))}); "
                                 "check -g base_url and the network")
            return Rejected(f"connection failed after {self.max_retries} retries: {self._scrub(str(error.__cause__ or error))}")
        if isinstance(error, (ValueError, OSError)):  # an answer that is not a readable image
            return Rejected(f"unreadable answer: {self._scrub(f'{type(error).__name__}: {error}')}")
        raise error

    def _message(self, error: Any) -> str:
        body = getattr(error, "body", None)
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = body["error"].get("message")
        return self._scrub(str(message or getattr(error, "message", "") or type(error).__name__))

    def _scrub(self, text: str) -> str:
        """One line, without the API key or anything shaped like one."""
        text = " ".join(str(text).split())
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return _KEY_PATTERN.sub("sk-***", text)


_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*]{3,}")


def _finish_in_flight(pool: ThreadPoolExecutor, pending: dict[Future, VariationTask]
                      ) -> Iterator[tuple[VariationTask, np.ndarray]]:
    """Cancel what has not started; wait for what is running and yield the images it made
    (failures are dropped: those tasks stay missing and `--resume` asks for them again)."""
    pool.shutdown(wait=False, cancel_futures=True)
    for future, task in list(pending.items()):
        if future.cancelled():
            continue
        if future.exception() is None:  # waits for it
            yield task, future.result()


def _is_connection_error(error: BaseException | None) -> bool:
    import openai

    return isinstance(error, openai.APIConnectionError)


def _code(error: Any) -> str | None:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            return body["error"].get("code")
        return body.get("code")
    return getattr(error, "code", None)


def _download(url: str, timeout: float) -> bytes:
    """An answer given as a URL (servers that ignore response_format=b64_json)."""
    from urllib.request import urlopen

    if urlsplit(url).scheme not in ("http", "https"):
        raise Rejected("the server answered with a non-HTTP image URL")
    with urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        return response.read()


def request_key(task: VariationTask) -> str:
    """The Idempotency-Key sent with a task's request (stable across runs of the same seed)."""
    digest = hashlib.sha256(f"{task.source_id}\x1f{task.index}\x1f{task.seed}".encode()).hexdigest()
    return f"synthmed-{digest[:32]}"
