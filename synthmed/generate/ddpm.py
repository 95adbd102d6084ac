"""`ddpm`: class-conditional denoising diffusion (diffusers UNet2DModel + schedulers).

Trained to predict v (Salimans and Ho 2022; or the added noise, `prediction=epsilon`) with
min-SNR-gamma loss weighting (Hang et al. 2023) and label dropout, so one
network learns both the conditional and the unconditional model and sampling can use
classifier-free guidance (Ho and Salimans): eps = eps_null + g * (eps_class - eps_null).
Samples come from the EMA of the weights, with DPM-Solver++ (default, 20 steps), DDIM or the
full DDPM chain.
"""

from __future__ import annotations

from typing import Any, Sequence

from synthmed.devices import cuda_amp_dtype
from synthmed.generate.fitted import FittedGenerator, noise_batch

SAMPLERS = ("ddim", "dpm", "ddpm")
PREDICTIONS = ("v_prediction", "epsilon")


class DdpmGenerator(FittedGenerator):
    name = "ddpm"

    def __init__(self, *, preset: str = "auto", steps: int = 20, guidance: float = 2.0, sampler: str = "dpm",
                 label_dropout: float = 0.1, ema_decay: float = 0.999, train_timesteps: int = 1000,
                 prediction: str = "v_prediction", min_snr_gamma: float = 5.0,
                 lr: float = 2e-4, batch_size: int = 16) -> None:
        super().__init__(batch_size=batch_size, lr=lr)
        from synthmed.generate.diffusion_models import PRESETS

        if preset != "auto" and preset not in PRESETS:
            raise ValueError(f"preset {preset!r} is not one of auto, {', '.join(PRESETS)}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
        if int(steps) < 1 or int(steps) > int(train_timesteps):
            raise ValueError(f"steps must be between 1 and train_timesteps ({train_timesteps})")
        if float(guidance) < 0:
            raise ValueError("guidance must be >= 0 (1 = no guidance)")
        if not 0 <= float(label_dropout) < 1:
            raise ValueError("label_dropout must be in [0, 1)")
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction {prediction!r} is not one of {', '.join(PREDICTIONS)}")
        if float(min_snr_gamma) < 0:
            raise ValueError("min_snr_gamma must be >= 0 (0 = unweighted loss)")
        self.prediction, self.min_snr_gamma = prediction, float(min_snr_gamma)
        self.preset, self.sampler = preset, sampler
        self.steps, self.guidance = int(steps), float(guidance)
        self.label_dropout, self.ema_decay = float(label_dropout), float(ema_decay)
        self.train_timesteps = int(train_timesteps)

    def _arch_extra(self, image_size: tuple[int, int]) -> dict[str, Any]:
        from synthmed.generate.diffusion_models import PRESETS, preset_for

        preset = preset_for(image_size, self.preset)
        step = 2 ** (len(PRESETS[preset]["block_out_channels"]) - 1)
        if image_size[0] % step or image_size[1] % step:
            raise ValueError(f"image size {image_size[0]}x{image_size[1]}: preset {preset!r} needs sides that are "
                             f"multiples of {step}")
        return {"preset": preset, "train_timesteps": self.train_timesteps,
                "beta_schedule": "squaredcos_cap_v2", "prediction_type": self.prediction}

    def _build(self, arch: dict[str, Any]) -> None:
        from synthmed.generate.diffusion_models import build_unet

        self.net = build_unet(channels=arch["channels"], image_size=tuple(arch["image_size"]),
                              num_classes=arch["num_classes"], preset=arch["preset"])

    def _train_scheduler(self) -> Any:
        from diffusers import DDPMScheduler

        # Models saved before v-prediction existed predicted the noise.
        return DDPMScheduler(num_train_timesteps=self.arch["train_timesteps"], beta_schedule=self.arch["beta_schedule"],
                             prediction_type=self.arch.get("prediction_type", "epsilon"))

    def _training_setup(self, device: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        import torch
        from torch.optim.swa_utils import AveragedModel

        decay = self.ema_decay

        def ema(averaged: Any, current: Any, count: Any) -> Any:
            # diffusers' EMA warm-up: the decay grows with the number of updates, so short fits
            # are not dominated by the random initial weights.
            n = int(count)
            d = min(decay, (1 + n) / (10 + n))
            return averaged * d + current * (1 - d)

        self.net.train()
        self.ema = AveragedModel(self.net, avg_fn=ema)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.lr)
        self.noise_scheduler = self._train_scheduler()
        self.device_type = torch.device(device).type
        self.amp_dtype = cuda_amp_dtype(device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        return {"unet": self.net, "ema": self.ema}, {"adamw": self.optimizer}

    def _train_step(self, group: Any, images: Any, labels: Any, device: Any) -> dict[str, float]:
        import torch

        count = images.shape[0]
        noise = torch.randn_like(images)
        timesteps = torch.randint(0, self.arch["train_timesteps"], (count,), device=device)
        noisy = self.noise_scheduler.add_noise(images, noise, timesteps)
        null = self.arch["num_classes"]
        dropped = torch.rand(count, device=device) < self.label_dropout
        class_labels = torch.where(dropped, torch.full_like(labels, null), labels)
        with torch.autocast(device_type=self.device_type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            predicted = self.net(noisy, timesteps, class_labels=class_labels).sample
        scheduler = self.noise_scheduler
        target = scheduler.get_velocity(images, noise, timesteps) if self.arch.get("prediction_type") == "v_prediction" \
            else noise
        errors = (predicted.float() - target).pow(2).flatten(1).mean(1)
        if self.min_snr_gamma:
            # Min-SNR-gamma (Hang et al. 2023): weight min(SNR, gamma) / SNR for noise targets,
            # / (SNR + 1) for v targets, so the easy low-noise steps stop dominating the loss.
            alpha = scheduler.alphas_cumprod.to(device)[timesteps]
            snr = alpha / (1 - alpha)
            clipped = snr.clamp(max=self.min_snr_gamma)
            errors = errors * (clipped / (snr + 1) if self.arch.get("prediction_type") == "v_prediction" else clipped / snr)
        loss = errors.mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.ema.update_parameters(self.net)
        return {"loss": loss.detach()}

    def _finish_fit(self) -> None:
        self.net = self.ema.module  # sample (and save) the EMA weights
        self.ema = self.optimizer = None

    def sampling_scheduler(self) -> Any:
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        train = self._train_scheduler()
        if self.sampler == "ddim":
            scheduler = DDIMScheduler.from_config(train.config)
        elif self.sampler == "dpm":
            # lambda_min_clipped: the cosine schedule's last timesteps have alpha ~ 0, where a data
            # prediction from a noise prediction is divided by ~0; thresholding keeps it in [-1, 1]
            # as DDIM's clipping does.
            scheduler = DPMSolverMultistepScheduler.from_config(train.config, algorithm_type="dpmsolver++",
                                                                lambda_min_clipped=-5.1, thresholding=True,
                                                                sample_max_value=1.0)
        else:
            scheduler = train
        steps = self.arch["train_timesteps"] if self.sampler == "ddpm" else self.steps
        scheduler.set_timesteps(steps)
        return scheduler

    def _generate(self, class_index: int, noises: Sequence[Any], device: Any) -> Any:
        import torch

        scheduler = self.sampling_scheduler()  # fresh per batch: multistep solvers keep state
        count = len(noises)
        shape = (self.arch["channels"], *self.arch["image_size"])
        sample = noise_batch(noises, shape, device) * scheduler.init_noise_sigma
        labels = torch.full((count,), class_index, dtype=torch.long, device=device)
        guided = self.guidance != 1.0
        if guided:
            labels = torch.cat([labels, torch.full_like(labels, self.arch["num_classes"])])
        amp_dtype = cuda_amp_dtype(device)  # the precision training used on this device
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(sample, t)
            if guided:
                model_input = torch.cat([model_input, model_input])
            with torch.autocast(device_type="cuda", dtype=amp_dtype or torch.float16, enabled=amp_dtype is not None):
                output = self.net(model_input, t, class_labels=labels).sample.float()  # noise or v
            if guided:
                conditional, unconditional = output.chunk(2)
                output = unconditional + self.guidance * (conditional - unconditional)
            # The DDPM chain adds fresh noise each step: drawn from each image's own generator.
            sample = scheduler.step(output, t, sample, generator=list(noises)).prev_sample
        return sample
