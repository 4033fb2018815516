// JSON over fetch. Every failure becomes an ApiError whose message can be shown as is:
// the server's own {"error": {"message"}} when there is one.

export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export async function api(method, path, body) {
  const options = {method, headers: {Accept: "application/json"}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new ApiError("Could not reach Lumara. Is the server still running?", "network", 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch { /* not JSON: described below */ }
  if (!response.ok) {
    const error = data && data.error;
    throw new ApiError(
      (error && error.message) || `The server answered ${response.status} ${response.statusText}.`,
      (error && error.code) || `http_${response.status}`, response.status);
  }
  if (data === null) {
    throw new ApiError("The server sent an answer that is not JSON.", "bad_response",
                       response.status);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);
