// Shared noise helpers (deterministic, no textures).
float hash12(vec2 p) {
    vec3 p3 = fract(vec3(p.xyx) * 0.1031);
    p3 += dot(p3, p3.yzx + 33.33);
    return fract((p3.x + p3.y) * p3.z);
}
float vnoise(vec2 p) {
    vec2 i = floor(p), f = fract(p);
    vec2 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash12(i), hash12(i + vec2(1, 0)), u.x),
               mix(hash12(i + vec2(0, 1)), hash12(i + vec2(1, 1)), u.x), u.y);
}
float fbm(vec2 p) {
    float s = 0.0, a = 0.5;
    for (int i = 0; i < 4; i++) { s += a * vnoise(p); p = p * 2.03 + 17.1; a *= 0.5; }
    return s;
}
uniform vec3 sun_dir;       // unit vector towards the sun (map frame, z up)
uniform vec3 sun_color;
uniform float sun_strength;
uniform vec3 sky_zenith;
uniform vec3 sky_horizon;
uniform float cloud_cover;
uniform float night;
uniform float sky_seed;
// Sky without clouds and stars: cheap enough for fog colour and reflections.
vec3 sky_gradient(vec3 d) {
    float t = clamp(d.z, 0.0, 1.0);
    vec3 c = mix(sky_horizon, sky_zenith, sqrt(t));
    if (d.z < 0.0) c = sky_horizon * (0.8 + 0.2 * exp(8.0 * d.z));
    float cs = max(dot(d, sun_dir), 0.0);
    float cs2 = cs * cs, cs8 = cs2 * cs2 * cs2 * cs2;
    return c + sun_color * sun_strength * (0.25 * cs8 + 0.5 * pow(cs8, 8.0));
}
vec3 sky_color(vec3 d, bool with_sun) {
    vec3 c = sky_gradient(d);
    float cs = max(dot(d, sun_dir), 0.0);
    if (d.z > 0.0) {
        vec2 uv = d.xy / (d.z + 0.15) * 1.5 + sky_seed;
        float cl = smoothstep(1.0 - cloud_cover, 1.15 - 0.5 * cloud_cover, fbm(uv));
        vec3 ccol = mix(vec3(0.9), sky_horizon, 0.5) * (0.35 + 0.65 * sun_strength)
                    + sun_color * sun_strength * 0.2;
        ccol = mix(ccol, sky_zenith * 1.5, night);
        c = mix(c, ccol, cl * smoothstep(0.0, 0.15, d.z));
        float star = step(0.9985, hash12(floor(d.xy / (d.z + 0.3) * 300.0)));
        c += night * (1.0 - cl) * star * vec3(0.8);
    }
    if (with_sun && cs > 0.9993) c += sun_color * sun_strength * 3.0;
    return c;
}
