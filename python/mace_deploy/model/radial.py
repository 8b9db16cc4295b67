"""Radial features of edges (basis x cutoff, optional distance transform) and ZBL repulsion,
reproducing mace-torch 0.3.16 `modules/radial.py` operation by operation."""

import torch


def polynomial_envelope(x: torch.Tensor, r_max: torch.Tensor, p: int) -> torch.Tensor:
    """mace-torch `PolynomialCutoff.calculate_envelope`: 1 at 0, smoothly 0 at and beyond r_max."""
    r = x / r_max
    envelope = (
        1.0
        - ((p + 1.0) * (p + 2.0) / 2.0) * torch.pow(r, p)
        + p * (p + 2.0) * torch.pow(r, p + 1)
        - (p * (p + 1.0) / 2) * torch.pow(r, p + 2)
    )
    return envelope * (x < r_max)


class RadialEmbedding(torch.nn.Module):
    """Edge lengths [E, 1] -> radial features [E, B] and, when the model applies the cutoff to
    the radial weights instead of the basis, the cutoff [E, 1]."""

    def __init__(self, basis: str, basis_weights: torch.Tensor, bessel_prefactor: float,
                 gaussian_coeff: float, r_max: float, cutoff_p: int, apply_cutoff: bool,
                 transform: str, transform_params: torch.Tensor, covalent_radii: torch.Tensor):
        super().__init__()
        self.basis = basis  # "bessel", "gaussian" or "chebyshev"
        self.register_buffer("basis_weights", basis_weights)  # bessel frequencies / gaussian centres / orders
        self.register_buffer("bessel_prefactor", torch.tensor(bessel_prefactor, dtype=basis_weights.dtype))
        self.gaussian_coeff = gaussian_coeff
        self.register_buffer("r_max", torch.tensor(r_max, dtype=basis_weights.dtype))
        self.cutoff_p = cutoff_p
        self.apply_cutoff = apply_cutoff
        self.transform = transform  # "", "Agnesi" or "Soft"
        self.register_buffer("transform_params", transform_params)  # Agnesi (q, p, a); Soft (alpha,)
        self.register_buffer("covalent_radii", covalent_radii)  # by species index

    def transformed(self, x: torch.Tensor, sender_species: torch.Tensor,
                    receiver_species: torch.Tensor) -> torch.Tensor:
        radii_u = self.covalent_radii[sender_species].unsqueeze(-1)
        radii_v = self.covalent_radii[receiver_species].unsqueeze(-1)
        if self.transform == "Agnesi":
            q, p, a = self.transform_params[0], self.transform_params[1], self.transform_params[2]
            r_0 = 0.5 * (radii_u + radii_v)
            r_over_r_0 = x / r_0
            return (1 + (a * torch.pow(r_over_r_0, q) / (1 + torch.pow(r_over_r_0, q - p)))).reciprocal()
        # Soft
        r_0 = radii_u + radii_v
        p_0 = (3 / 4) * r_0
        p_1 = (4 / 3) * r_0
        m = 0.5 * (p_0 + p_1)
        alpha = self.transform_params[0] / (p_1 - p_0)
        s_x = 0.5 * (1.0 + torch.tanh(alpha * (x - m)))
        return p_0 + (x - p_0) * s_x

    def forward(self, lengths: torch.Tensor, sender_species: torch.Tensor, receiver_species: torch.Tensor):
        cutoff = polynomial_envelope(lengths, self.r_max, self.cutoff_p)
        x = lengths
        if self.transform != "":
            x = self.transformed(x, sender_species, receiver_species)
        if self.basis == "bessel":
            radial = self.bessel_prefactor * (torch.sin(self.basis_weights * x) / x)
        elif self.basis == "gaussian":
            radial = torch.exp(self.gaussian_coeff * torch.pow(x - self.basis_weights, 2))
        else:
            n = self.basis_weights.unsqueeze(0).repeat(x.shape[0], 1)
            radial = torch.special.chebyshev_polynomial_t(x.repeat(1, n.shape[1]), n)
        if self.apply_cutoff:
            return radial * cutoff, None
        return radial, cutoff


class ZBLRepulsion(torch.nn.Module):
    """Ziegler-Biersack-Littmark screened nuclear repulsion with a polynomial envelope
    (mace-torch `ZBLBasis`); returns the pair energy of each receiver node."""

    def __init__(self, c: torch.Tensor, a_exp: torch.Tensor, a_prefactor: torch.Tensor, p: int,
                 atomic_numbers: torch.Tensor, covalent_radii: torch.Tensor):
        super().__init__()
        self.register_buffer("c", c)
        self.register_buffer("a_exp", a_exp)
        self.register_buffer("a_prefactor", a_prefactor)
        self.p = p
        self.register_buffer("atomic_numbers", atomic_numbers)  # by species index, int64
        self.register_buffer("covalent_radii", covalent_radii)  # by species index

    def forward(self, x: torch.Tensor, sender_species: torch.Tensor, receiver_species: torch.Tensor,
                receivers: torch.Tensor, num_receivers: int) -> torch.Tensor:
        z_u = self.atomic_numbers[sender_species].unsqueeze(-1)
        z_v = self.atomic_numbers[receiver_species].unsqueeze(-1)
        a = self.a_prefactor * 0.529 / (torch.pow(z_u, self.a_exp) + torch.pow(z_v, self.a_exp))
        r_over_a = x / a
        phi = (
            self.c[0] * torch.exp(-3.2 * r_over_a)
            + self.c[1] * torch.exp(-0.9423 * r_over_a)
            + self.c[2] * torch.exp(-0.4028 * r_over_a)
            + self.c[3] * torch.exp(-0.2016 * r_over_a)
        )
        v_edges = (14.3996 * z_u.to(x.dtype) * z_v.to(x.dtype)) / x * phi
        r_max = self.covalent_radii[sender_species].unsqueeze(-1) + self.covalent_radii[receiver_species].unsqueeze(-1)
        v_edges = 0.5 * v_edges * polynomial_envelope(x, r_max, self.p)
        energy = torch.zeros((num_receivers, 1), dtype=x.dtype, device=x.device)
        return energy.index_add(0, receivers, v_edges).squeeze(-1)
